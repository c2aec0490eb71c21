"""The parser chain: tries job-document parsers in order until one claims the document.

A parser returns ``None`` ("not mine", the next one is tried), returns a plan, or raises
``JobDocumentError`` for a document that is its own but invalid (the chain stops there). When no parser
claims the document the chain raises ``NoParserAcceptedError``; ``rejection_report`` turns either error
into the REJECTED status report the device sends. A user parser that fails with anything but an
``OtaError`` is wrapped in ``ParserFailedError``, so a buggy plug-in never crashes the agent.
"""

from __future__ import annotations

import logging
import threading
import unicodedata
from collections.abc import Iterable

from ota_core.errors import ConfigurationError, JobDocumentError, OtaError
from ota_core.models import JobEvent, JobStatus, StatusReport, UpdatePlan
from ota_core.protocols import JobParser

__all__ = ["NoParserAcceptedError", "ParserChain", "ParserFailedError", "rejection_report"]

_log = logging.getLogger(__name__)


class NoParserAcceptedError(JobDocumentError):
    """No registered parser recognised the job document."""

    code = "JOB_DOCUMENT_UNSUPPORTED"


class ParserFailedError(JobDocumentError):
    """A parser raised something other than a typed error; the document is treated as invalid."""

    code = "JOB_DOCUMENT_PARSER_FAILED"


class ParserChain:
    """An ordered, thread-safe list of parsers; itself a ``JobParser`` that never returns ``None``."""

    name = "chain"

    def __init__(self, parsers: Iterable[JobParser] = ()) -> None:
        self._lock = threading.Lock()
        self._parsers: list[JobParser] = []
        for parser in parsers:
            self.register(parser)

    @property
    def parsers(self) -> tuple[JobParser, ...]:
        """The parsers in the order they are tried."""
        with self._lock:
            return tuple(self._parsers)

    def register(self, parser: JobParser, *, first: bool = False) -> None:
        """Add ``parser`` at the end (or at the front with ``first``); names must be unique."""
        if not isinstance(parser, JobParser):
            raise ConfigurationError("a parser needs a 'name' attribute and a 'parse(event)' method")
        with self._lock:
            if any(existing.name == parser.name for existing in self._parsers):
                raise ConfigurationError(f"a parser named {parser.name!r} is already registered")
            if first:
                self._parsers.insert(0, parser)
            else:
                self._parsers.append(parser)

    def unregister(self, name: str) -> None:
        """Remove the parser called ``name`` (no error if there is none)."""
        with self._lock:
            self._parsers = [parser for parser in self._parsers if parser.name != name]

    def parse(self, event: JobEvent) -> UpdatePlan:
        """The first plan a parser makes; ``NoParserAcceptedError`` if none claims the document."""
        for parser in self.parsers:
            try:
                plan = parser.parse(event)
            except OtaError:
                raise
            except Exception as exc:  # a user parser must not crash the agent
                _log.exception("parser %s failed on job %s", parser.name, event.job_id)
                raise ParserFailedError(
                    f"parser {parser.name!r} failed: {type(exc).__name__}", details={"parser": parser.name}
                ) from exc
            if plan is not None:
                if not isinstance(plan, UpdatePlan):
                    raise ParserFailedError(
                        f"parser {parser.name!r} returned something that is not a plan",
                        details={"parser": parser.name},
                    )
                _log.info("job %s parsed by %s", event.job_id, parser.name)
                return plan
        raise NoParserAcceptedError(
            "no parser recognised the job document",
            details={
                "parsers": [parser.name for parser in self.parsers],
                "keys": sorted(str(key) for key in event.document)[:10],
            },
        )


def rejection_report(job_id: str, error: OtaError) -> StatusReport:
    """The REJECTED report for a job whose document could not be turned into a plan."""
    details = {key: _printable(value)[:1024] for key, value in error.as_report().items()}
    return StatusReport(
        job_id=job_id,
        status=JobStatus.REJECTED,
        details={key: value for key, value in details.items() if value},
    )


def _printable(text: str) -> str:
    """``text`` with control characters replaced by spaces (AWS refuses them in statusDetails)."""
    return "".join(" " if unicodedata.category(ch).startswith("C") else ch for ch in text).strip()

"""Job-document parsers and the parser chain.

``AfrOtaParser`` reads the ``afr_ota`` document of AWS IoT OTA updates, ``HttpDocumentParser`` the
generic ``ota_http`` document for hand-made jobs with a presigned URL, and ``ParserChain`` tries parsers
in order, with room for the user's own.
"""

from ota_jobs.parsers._afr_ota import AFR_OTA_ORIGIN, AfrOtaParser, AfrOtaParserConfig
from ota_jobs.parsers._chain import NoParserAcceptedError, ParserChain, ParserFailedError, rejection_report
from ota_jobs.parsers._common import MAX_DOCUMENT_CHARS, UnsafeFilePathError, safe_relative_path
from ota_jobs.parsers._http_document import (
    HTTP_DOCUMENT_KEY,
    HTTP_DOCUMENT_ORIGIN,
    HttpDocumentParser,
    HttpDocumentParserConfig,
)

__all__ = [
    "AFR_OTA_ORIGIN",
    "HTTP_DOCUMENT_KEY",
    "HTTP_DOCUMENT_ORIGIN",
    "MAX_DOCUMENT_CHARS",
    "AfrOtaParser",
    "AfrOtaParserConfig",
    "HttpDocumentParser",
    "HttpDocumentParserConfig",
    "NoParserAcceptedError",
    "ParserChain",
    "ParserFailedError",
    "UnsafeFilePathError",
    "default_parser_chain",
    "rejection_report",
    "safe_relative_path",
]


def default_parser_chain(
    afr_ota: AfrOtaParserConfig | None = None, http_document: HttpDocumentParserConfig | None = None
) -> ParserChain:
    """A chain of the built-in parsers: ``afr_ota`` first, then the generic HTTP document."""
    return ParserChain([AfrOtaParser(afr_ota), HttpDocumentParser(http_document)])

"""An in-process test rig: one simulated device (state store, boot control, downloader) and a fake cloud.

``reboot()`` stops the engine, runs the simulated bootloader and builds a new engine over the same
persistent state, which is what a device restart does.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ota_core import Clock, FileStateStore
from ota_core.engine import (
    EngineConfig,
    EngineEvent,
    EngineEventKind,
    SelfTest,
    SinkFactory,
    UpdateEngine,
    UpdatePolicy,
)
from tests.engine_fixtures import (
    FakeJobSource,
    FileBootControl,
    FileDownloader,
    JsonPlanParser,
    Sha256Verifier,
    job_document,
    make_image,
)

FAST = EngineConfig(report_retry_delays=(0.0,), poll_interval=0.2, self_test_timeout=5.0)


class Rig:
    """A device and a cloud for one test."""

    def __init__(
        self,
        tmp_path: Path,
        *,
        config: EngineConfig = FAST,
        self_test: SelfTest | None = None,
        policy: UpdatePolicy | None = None,
        clock: Clock | None = None,
        chunk_size: int = 8192,
        on_chunk: Callable[[int], None] | None = None,
        sink_factory: SinkFactory | None = None,
    ) -> None:
        self.tmp = tmp_path
        self.store = FileStateStore(tmp_path / "state")
        self.boot = FileBootControl(tmp_path / "boot")
        self.source = FakeJobSource()
        self.verifier = Sha256Verifier()
        self.downloader = FileDownloader(self.store, chunk_size=chunk_size, on_chunk=on_chunk)
        self.config = config
        self.self_test = self_test
        self.policy = policy
        self.clock = clock
        self.sink_factory = sink_factory
        self.events: list[EngineEvent] = []
        self.restart_requests = 0
        self.engine: UpdateEngine | None = None

    def start(self) -> UpdateEngine:
        engine = UpdateEngine(
            job_source=self.source,
            parsers=[JsonPlanParser()],
            downloaders=[self.downloader],
            verifier=self.verifier,
            boot_control=self.boot,
            state_store=self.store,
            restart=self._restart,
            self_test=self.self_test,
            update_control=self.policy,
            clock=self.clock,
            config=self.config,
            sink_factory=self.sink_factory,
        )
        engine.add_listener(self.events.append)
        engine.start()
        self.engine = engine
        return engine

    def _restart(self) -> None:
        self.restart_requests += 1

    def stop(self) -> None:
        if self.engine is not None:
            self.engine.stop()
            self.engine = None

    def reboot(self) -> UpdateEngine:
        """Power-cycle the simulated device."""
        self.stop()
        self.boot.boot()
        return self.start()

    def publish(self, job_id: str, version: str = "1.0.1", *, size: int = 40_000, notify: bool = True,
                corrupt: bool = False, **extra: Any) -> dict[str, Any]:
        data = make_image(version, size)
        path = self.tmp / f"{job_id}.bin"
        path.write_bytes(data)
        document = job_document(path, data, version)
        if corrupt:
            path.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
        document.update(extra)
        self.source.add_job(job_id, document, notify=notify)
        return document

    def kinds(self, job_id: str | None = None) -> list[EngineEventKind]:
        return [event.kind for event in list(self.events) if job_id is None or event.job_id == job_id]

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"condition not reached; events: {[str(e.kind) for e in self.events]}")
            time.sleep(0.005)

    def wait_event(self, kind: EngineEventKind, job_id: str | None = None, count: int = 1) -> None:
        self.wait_for(lambda: self.kinds(job_id).count(kind) >= count)

    def wait_idle(self) -> None:
        assert self.engine is not None
        assert self.engine.wait_until_idle(10.0)


def blocking_hook() -> tuple[Callable[[int], None], threading.Event, threading.Event]:
    """A chunk hook that signals ``reached`` at the first chunk and then waits for ``release``."""
    reached = threading.Event()
    release = threading.Event()

    def hook(_offset: int) -> None:
        if not reached.is_set():
            reached.set()
            release.wait(10.0)

    return hook, reached, release

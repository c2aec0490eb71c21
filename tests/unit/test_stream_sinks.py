"""Unit tests of the file sink and the in-order verifier feeder (a temporary file is the only I/O)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from ota_core.errors import DownloadError
from ota_stream import FileSink, InOrderFeeder
from ota_stream.errors import SinkBoundsError


class Recorder:
    def __init__(self) -> None:
        self.data = bytearray()

    def update(self, data: bytes) -> None:
        self.data += data

    def finish(self) -> None:
        return None


def test_file_sink_writes_reads_and_refuses_out_of_bounds(tmp_path: Path) -> None:
    with FileSink(tmp_path / "f", 10) as sink:
        sink.write_at(4, b"abc")
        sink.flush()
        assert sink.read(4, 3) == b"abc"
        for offset, data in ((8, b"abc"), (-1, b"a"), (10, b"x")):
            with pytest.raises(SinkBoundsError):
                sink.write_at(offset, data)
        with pytest.raises(SinkBoundsError):
            sink.read(9, 2)
    assert (tmp_path / "f").read_bytes() == b"\0\0\0\0abc\0\0\0"  # preallocated to the full size


def test_file_sink_truncates_a_longer_existing_file(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"x" * 100)
    FileSink(tmp_path / "f", 10).close()
    assert (tmp_path / "f").stat().st_size == 10


def test_file_sink_reports_os_errors(tmp_path: Path) -> None:
    with pytest.raises(DownloadError):
        FileSink(tmp_path / "missing-dir" / "f", 10)
    sink = FileSink(tmp_path / "f", 10)
    sink.close()
    for action in (lambda: sink.write_at(0, b"a"), lambda: sink.read(0, 1), sink.flush):
        with pytest.raises((DownloadError, ValueError)):
            action()


def test_feeder_in_order_and_shuffled(tmp_path: Path) -> None:
    content = bytes(random.Random(1).randbytes(10_000))
    pieces = [(offset, content[offset : offset + 1000]) for offset in range(0, 10_000, 1000)]
    random.Random(2).shuffle(pieces)
    recorder = Recorder()
    feeder = InOrderFeeder(recorder, len(content))
    for offset, piece in pieces + pieces[:3]:
        feeder.written(offset, piece)
    assert bytes(recorder.data) == content
    assert feeder.fed == len(content)


def test_feeder_reads_back_beyond_its_budget(tmp_path: Path) -> None:
    content = bytes(random.Random(3).randbytes(8000))
    recorder = Recorder()
    with FileSink(tmp_path / "f", len(content)) as sink:
        feeder = InOrderFeeder(recorder, len(content), reader=sink, max_buffered=1500)
        for offset in range(7000, -1, -1000):  # all in reverse: only the first piece is in order
            piece = content[offset : offset + 1000]
            sink.write_at(offset, piece)
            feeder.written(offset, piece)
        assert bytes(recorder.data) == content
        assert feeder.bytes_read_back >= 5000


def test_feeder_catch_up_and_present(tmp_path: Path) -> None:
    content = bytes(range(256)) * 20
    recorder = Recorder()
    with FileSink(tmp_path / "f", len(content)) as sink:
        sink.write_at(0, content)
        feeder = InOrderFeeder(recorder, len(content), reader=sink)
        feeder.catch_up(1000)
        feeder.catch_up(500)  # nothing to do
        feeder.present(2000, 1000)
        feeder.present(2000, 1000)  # twice is harmless
        feeder.written(1000, content[1000:2000])
        feeder.written(3000, content[3000:])
        assert bytes(recorder.data) == content


def test_feeder_without_reader_cannot_resume() -> None:
    feeder = InOrderFeeder(Recorder(), 100)
    with pytest.raises(DownloadError):
        feeder.catch_up(10)
    feeder.present(10, 10)
    with pytest.raises(DownloadError):
        feeder.written(0, b"x" * 10)


def test_feeder_without_verifier_only_counts() -> None:
    feeder = InOrderFeeder(None, 100)
    feeder.catch_up(50)
    feeder.present(60, 40)
    feeder.written(50, b"x" * 10)
    assert feeder.fed == 100


def test_feeder_detects_a_short_sink(tmp_path: Path) -> None:
    class Empty:
        def write_at(self, offset: int, data: bytes) -> None: ...
        def flush(self) -> None: ...
        def read(self, offset: int, length: int) -> bytes:
            return b""

    feeder = InOrderFeeder(Recorder(), 100, reader=Empty())
    with pytest.raises(DownloadError):
        feeder.catch_up(10)

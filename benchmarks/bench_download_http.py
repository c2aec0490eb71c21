"""HTTP download benchmark: ota_stream's downloader (+ SHA-256 + durable write + resume records) against
plain requests + hashlib + file write, on the same file from the same loopback server, in the same run.

Also measures the peak RSS of a 256 MiB download in a fresh child process, above the interpreter's own
baseline (measured in the same child after the imports, before the download).

    .venv/bin/python benchmarks/bench_download_http.py [--size-mib 256] [--rounds 3] [--sweep]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

from ota_cloud.file_server import RangeFileServer
from ota_core.models import FileLocation, FileTarget, Integrity, LocationKind
from ota_core.protocols import DownloadRequest
from ota_core.state_store import FileStateStore
from ota_stream import FileSink, HttpDownloadConfig, HttpRangeDownloader


class Sha256:
    """An incremental verifier that only hashes (the work a real verifier does per byte)."""

    def __init__(self) -> None:
        self.hash = hashlib.sha256()

    def update(self, data: bytes) -> None:
        self.hash.update(data)

    def finish(self) -> None:
        return None


def make_file(path: Path, size: int) -> bytes:
    """Write ``size`` pseudo-random bytes to ``path`` and return their SHA-256."""
    digest = hashlib.sha256()
    block = os.urandom(1024 * 1024)
    with path.open("wb") as handle:
        left = size
        while left:
            piece = block[: min(left, len(block))]
            handle.write(piece)
            digest.update(piece)
            left -= len(piece)
    return digest.digest()


def baseline(url: str, out: Path, chunk: int) -> bytes:
    """Plain requests + hashlib + file write."""
    digest = hashlib.sha256()
    with requests.get(url, stream=True, timeout=30) as response, out.open("wb") as handle:
        response.raise_for_status()
        for piece in response.iter_content(chunk):
            digest.update(piece)
            handle.write(piece)
    return digest.digest()


class NoSyncSink(FileSink):
    """The same file sink without fdatasync, to show what durability costs."""

    def flush(self) -> None:
        return None


def ours(
    url: str, out: Path, size: int, digest: bytes, state: Path, config: HttpDownloadConfig, *, durable: bool = True
) -> bytes:
    """ota_stream: FileSink (fdatasync at save points), SHA-256 fed in order, resume records in a state store."""
    store = FileStateStore(state)
    store.delete("bench")
    location = FileLocation(LocationKind.HTTP, url)
    target = FileTarget("bench.bin", size, (location,), Integrity(digests={"sha256": digest}))
    verifier = Sha256()
    with (FileSink if durable else NoSyncSink)(out, size) as sink, HttpRangeDownloader(store, config) as downloader:
        downloader.download(DownloadRequest("bench-job", target, location, sink, "bench", verifier=verifier))
    return verifier.hash.digest()


def _proc_status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def current_rss_kib() -> int:
    """The resident set size right now (not the peak), in KiB."""
    return _proc_status_kib("VmRSS")


def peak_rss_kib() -> int:
    """This process's peak RSS in KiB (VmHWM: unlike ru_maxrss it does not inherit the parent's peak)."""
    return _proc_status_kib("VmHWM")


def child_rss(url: str, out: Path, size: int, digest: str, state: Path) -> None:
    """In a fresh process: RSS after imports, then peak RSS after a download. Prints two numbers (KiB)."""
    before = current_rss_kib()
    config = HttpDownloadConfig(allow_insecure_http=True)
    got = ours(url, out, size, bytes.fromhex(digest), state, config)
    assert got.hex() == digest
    after = peak_rss_kib()
    print(before, after)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sweep", action="store_true", help="also sweep the chunk size")
    parser.add_argument("--dir", default=None, help="where to put the files (e.g. /dev/shm to leave the disk out)")
    parser.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        url, out, size, digest, state = args.child
        child_rss(url, Path(out), int(size), digest, Path(state))
        return
    size = args.size_mib * 1024 * 1024
    with tempfile.TemporaryDirectory(prefix="bench-http-", dir=args.dir) as folder:
        work = Path(folder)
        source = work / "source.bin"
        digest = make_file(source, size)
        with RangeFileServer() as server:
            url = server.add_file("bench.bin", source)
            config = HttpDownloadConfig(allow_insecure_http=True)
            base_times: list[float] = []
            our_times: list[float] = []
            nosync_times: list[float] = []
            for _ in range(args.rounds):
                os.sync()  # each timed run starts with no dirty pages left by the previous one
                start = time.perf_counter()
                assert baseline(url, work / "base.bin", 1024 * 1024) == digest
                base_times.append(time.perf_counter() - start)
                (work / "base.bin").unlink()
                os.sync()
                start = time.perf_counter()
                assert ours(url, work / "ours.bin", size, digest, work / "state", config) == digest
                our_times.append(time.perf_counter() - start)
                (work / "ours.bin").unlink()
                os.sync()
                start = time.perf_counter()
                assert ours(url, work / "ours.bin", size, digest, work / "state", config, durable=False) == digest
                nosync_times.append(time.perf_counter() - start)
                (work / "ours.bin").unlink()
            base = statistics.median(base_times)
            mine = statistics.median(our_times)
            mib = size / 1024 / 1024
            print(f"file: {args.size_mib} MiB in {args.dir or tempfile.gettempdir()}, rounds: {args.rounds} (median)")
            print(f"baseline requests+hashlib+write : {base:6.2f} s  {mib / base:7.1f} MiB/s")
            print(f"ota_stream HttpRangeDownloader  : {mine:6.2f} s  {mib / mine:7.1f} MiB/s")
            print(f"ratio (ours/baseline throughput): {base / mine:.2f}")
            nosync = statistics.median(nosync_times)
            print(f"ota_stream without fdatasync    : {nosync:6.2f} s  {mib / nosync:7.1f} MiB/s")
            print(f"ratio without fdatasync         : {base / nosync:.2f}")
            if args.sweep:
                for chunk in (64 * 1024, 256 * 1024, 1024 * 1024, 4 * 1024 * 1024):
                    for save in (2 * 1024 * 1024, 8 * 1024 * 1024, 32 * 1024 * 1024):
                        swept = HttpDownloadConfig(allow_insecure_http=True, chunk_size=chunk, save_interval_bytes=save)
                        times = []
                        for _ in range(args.rounds):
                            os.sync()
                            start = time.perf_counter()
                            ours(url, work / "ours.bin", size, digest, work / "state", swept)
                            times.append(time.perf_counter() - start)
                            (work / "ours.bin").unlink()
                        best = statistics.median(times)
                        print(
                            f"sweep chunk={chunk // 1024:5d} KiB save every {save // 1024 // 1024:3d} MiB: "
                            f"{mib / best:7.1f} MiB/s"
                        )
            result = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--child",
                    url,
                    str(work / "rss.bin"),
                    str(size),
                    digest.hex(),
                    str(work / "state-rss"),
                ],
                check=True,
                capture_output=True,
                text=True,
            )
            before, after = (int(x) for x in result.stdout.split())
            print(
                f"peak RSS: RSS after imports {before / 1024:.1f} MiB, after the {args.size_mib} MiB download "
                f"(peak) {after / 1024:.1f} MiB, peak above baseline {(after - before) / 1024:.1f} MiB"
            )


if __name__ == "__main__":
    main()

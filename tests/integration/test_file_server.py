"""The loopback Range file server, checked with plain requests."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
import requests

from ota_cloud.file_server import ByteRange, RangeFileServer, parse_range_header
from ota_cloud.pki import LocalPki

DATA = bytes(range(256)) * 40  # 10 240 bytes


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("bytes=0-9", ByteRange(0, 9)),
        ("bytes=10240-", "unsatisfiable"),
        ("bytes=10000-", ByteRange(10000, 10239)),
        ("bytes=-40", ByteRange(10200, 10239)),
        ("bytes=-0", "unsatisfiable"),
        ("bytes=-99999", ByteRange(0, 10239)),
        ("bytes=5-99999", ByteRange(5, 10239)),
        ("bytes=9-5", None),
        ("bytes=0-1,5-6", None),
        ("items=0-1", None),
        ("bytes=-", None),
    ],
)
def test_parse_range_header(header: str | None, expected: object) -> None:
    assert parse_range_header(header, len(DATA)) == expected


def test_empty_file_suffix_range_is_unsatisfiable() -> None:
    assert parse_range_header("bytes=-5", 0) == "unsatisfiable"


def test_full_partial_and_conditional_gets(http_file_server: RangeFileServer) -> None:
    url = http_file_server.add_file("fw/app.bin", DATA)
    full = requests.get(url, timeout=5)
    assert full.status_code == 200 and full.content == DATA
    etag = full.headers["ETag"]
    assert full.headers["Accept-Ranges"] == "bytes"
    part = requests.get(url, headers={"Range": "bytes=100-199"}, timeout=5)
    assert part.status_code == 206
    assert part.content == DATA[100:200]
    assert part.headers["Content-Range"] == f"bytes 100-199/{len(DATA)}"
    same = requests.get(url, headers={"Range": "bytes=1000-", "If-Range": etag}, timeout=5)
    assert same.status_code == 206 and same.content == DATA[1000:]
    changed = requests.get(url, headers={"Range": "bytes=1000-", "If-Range": '"old"'}, timeout=5)
    assert changed.status_code == 200 and changed.content == DATA
    outside = requests.get(url, headers={"Range": f"bytes={len(DATA)}-"}, timeout=5)
    assert outside.status_code == 416
    head = requests.head(url, timeout=5)
    assert head.status_code == 200 and head.headers["Content-Length"] == str(len(DATA))
    assert requests.get(http_file_server.url + "missing", timeout=5).status_code == 404
    assert requests.get(url + "?X-Amz-Signature=abc", timeout=5).content == DATA
    assert http_file_server.requests_served >= 8


def test_files_on_disk_and_removal(http_file_server: RangeFileServer, tmp_path: Path) -> None:
    path = tmp_path / "big.bin"
    path.write_bytes(DATA * 200)
    url = http_file_server.add_file("big.bin", path)
    response = requests.get(url, headers={"Range": "bytes=2000000-"}, timeout=5)
    assert response.status_code == 206 and response.content == (DATA * 200)[2000000:]
    http_file_server.remove_file("big.bin")
    assert requests.get(url, timeout=5).status_code == 404
    with pytest.raises(ValueError, match="invalid file name"):
        http_file_server.add_file("../escape", b"x")
    with pytest.raises(ValueError, match="invalid file name"):
        http_file_server.add_file("/", b"x")


def test_https_with_the_local_pki(test_pki: LocalPki) -> None:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(test_pki.server.cert_file, test_pki.server.key_file)
    with RangeFileServer(tls_context=context) as server:
        url = server.add_file("a.bin", DATA)
        assert url.startswith("https://localhost:")
        response = requests.get(url, verify=str(test_pki.ca_file), timeout=5)
        assert response.content == DATA
        with pytest.raises(requests.exceptions.SSLError):
            requests.get(url, timeout=5)  # verification stays on: the local CA is not trusted by default

"""The crash-safe state store: round trips, corruption fallback, bad names and injected power cuts."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ota_core.errors import ConfigurationError, StateCorruptedError, StateStoreError
from ota_core.state_store import FileStateStore


class PowerCut(BaseException):
    """Raised by the fault hook to stop a save between two of its steps."""


def test_round_trip_and_schema_version(tmp_path: Path) -> None:
    store = FileStateStore(tmp_path)
    assert store.load("progress") is None
    store.save("progress", {"offset": 4096, "etag": "x"}, schema_version=3)
    document = store.load("progress")
    assert document is not None
    assert document.data == {"offset": 4096, "etag": "x"}
    assert document.schema_version == 3
    assert store.names() == ["progress"]
    store.delete("progress")
    assert store.load("progress") is None
    store.delete("progress")  # deleting twice is fine
    assert store.directory == tmp_path


def test_corrupt_current_copy_falls_back_to_previous(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = FileStateStore(tmp_path)
    store.save("job", {"n": 1})
    store.save("job", {"n": 2})
    current = tmp_path / "job.json"
    raw = bytearray(current.read_bytes())
    raw[-3] ^= 0x01
    current.write_bytes(bytes(raw))
    with caplog.at_level(logging.WARNING):
        document = store.load("job")
    assert document is not None and document.data == {"n": 1}
    assert "previous copy" in caplog.text


@pytest.mark.parametrize(
    "damage",
    [b"", b"garbage", b"{}\n{}\n", b'{"format": "modular-ota-state/1"}\n{}\n', b'{"format":"x"}\n{}\n'],
)
def test_both_copies_bad_raises_typed_error(tmp_path: Path, damage: bytes) -> None:
    store = FileStateStore(tmp_path)
    store.save("job", {"n": 1})
    store.save("job", {"n": 2})
    (tmp_path / "job.json").write_bytes(damage)
    (tmp_path / "job.json.prev").write_bytes(damage)
    with pytest.raises(StateCorruptedError):
        store.load("job")


def test_copy_of_another_document_is_refused(tmp_path: Path) -> None:
    store = FileStateStore(tmp_path)
    store.save("a", {"n": 1})
    (tmp_path / "b.json").write_bytes((tmp_path / "a.json").read_bytes())
    with pytest.raises(StateCorruptedError, match="belongs to"):
        store.load("b")


@pytest.mark.parametrize("name", ["", ".hidden", "../escape", "a/b", "x" * 200, "a..b", 5])
def test_bad_names_are_refused(tmp_path: Path, name: object) -> None:
    store = FileStateStore(tmp_path)
    with pytest.raises(ConfigurationError):
        store.save(name, {})  # type: ignore[arg-type]


def test_bad_documents_are_refused(tmp_path: Path) -> None:
    store = FileStateStore(tmp_path, max_document_bytes=200)
    with pytest.raises(StateStoreError, match="not JSON"):
        store.save("x", {"value": object()})
    with pytest.raises(StateStoreError, match="not JSON"):
        store.save("x", {"value": float("nan")})
    with pytest.raises(StateStoreError, match="over the limit"):
        store.save("x", {"value": "y" * 500})
    with pytest.raises(ConfigurationError):
        store.save("x", ["not", "a", "mapping"])  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        store.save("x", {}, schema_version=-1)
    (tmp_path / "big.json").write_bytes(b"x" * 300)
    with pytest.raises(StateCorruptedError):
        store.load("big")


def test_unwritable_directory_is_a_typed_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(StateStoreError):
        FileStateStore(blocker / "sub")


@pytest.mark.parametrize("step", ["temp-written", "previous-kept", "renamed", "directory-synced"])
def test_power_cut_at_every_step_leaves_old_or_new(tmp_path: Path, step: str) -> None:
    def cut(at: str) -> None:
        if at == step:
            raise PowerCut

    FileStateStore(tmp_path).save("job", {"n": 1})
    store = FileStateStore(tmp_path, fault_hook=cut)
    with pytest.raises(PowerCut):
        store.save("job", {"n": 2})
    reopened = FileStateStore(tmp_path)  # a reboot: stale temporaries are swept
    document = reopened.load("job")
    assert document is not None
    expected = {"n": 2} if step in ("renamed", "directory-synced") else {"n": 1}
    assert document.data == expected
    assert not list(tmp_path.glob(".*tmp*"))


def test_stale_temporaries_are_removed(tmp_path: Path) -> None:
    (tmp_path / ".job.123.abcd.tmp").write_text("partial")
    FileStateStore(tmp_path)
    assert not (tmp_path / ".job.123.abcd.tmp").exists()


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=300))
def test_fuzz_any_bytes_on_disk_give_document_or_typed_error(
    tmp_path_factory: pytest.TempPathFactory, raw: bytes
) -> None:
    folder = tmp_path_factory.mktemp("fuzz")
    (folder / "doc.json").write_bytes(raw)
    store = FileStateStore(folder)
    try:
        document = store.load("doc")
    except StateCorruptedError:
        return
    assert document is not None


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.text(max_size=10), json_values, max_size=6))
def test_fuzz_round_trip(tmp_path_factory: pytest.TempPathFactory, data: dict[str, object]) -> None:
    store = FileStateStore(tmp_path_factory.mktemp("rt"))
    store.save("doc", data)
    document = store.load("doc")
    assert document is not None and document.data == data

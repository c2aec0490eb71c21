"""The stand-in keeps its state in a directory: twins, updates, deployments and keys survive a restart."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest
import requests

from ota_cloud.azure import AzureStandIn, IotHubStandIn, StandInRequestError, TwinRegistry
from ota_cloud.azure._signing import SigningKeys
from ota_cloud.broker import MosquittoBroker

pytestmark = pytest.mark.broker


def test_state_survives_restart(mosquitto: MosquittoBroker, tmp_path: Path) -> None:
    data = b"payload" * 10
    manifest = {
        "manifestVersion": "5.0",
        "updateId": {"provider": "P", "name": "N", "version": "1.0"},
        "compatibility": [{"manufacturer": "P"}],
        "instructions": {"steps": [{"handler": "a/b:1", "files": ["f.bin"]}]},
        "files": [
            {
                "filename": "f.bin",
                "sizeInBytes": len(data),
                "hashes": {"sha256": base64.b64encode(hashlib.sha256(data).digest()).decode()},
            }
        ],
    }
    state = tmp_path / "state"
    with AzureStandIn(mosquitto.url, state, admin_port=None, key_size=2048) as first:
        first.hub.register_device("weird id@1", "k")
        first.hub.register_device("d1", "k")
        first.hub.update_desired("d1", {"x": 1})
        update_id = first.adu.import_update(manifest, {"f.bin": data})
        first.adu.create_deployment("dep", update_id, ["d1"])
        root_pem = first.adu.keys.root_public_pem()
    with AzureStandIn(mosquitto.url, state, admin_port=None) as second:
        assert second.hub.twins.device_ids() == ["d1", "weird id@1"]
        assert second.hub.get_twin("d1")["desired"]["x"] == 1
        assert second.adu.keys.root_public_pem() == root_pem
        assert second.adu.updates() == [update_id]
        assert second.adu.deployment_status("dep")["counts"] == {"Pending": 1}
        url = second.adu.update(update_id)["fileUrls"]
        assert requests.get(next(iter(url.values())), timeout=5).content == data
    assert TwinRegistry(state / "twins").get("d1").desired_version == 3


def test_stand_in_rejects_bad_requests(mosquitto: MosquittoBroker, tmp_path: Path) -> None:
    with pytest.raises(StandInRequestError):
        IotHubStandIn(mosquitto.url, topic_prefix="devices/")
    single = IotHubStandIn(mosquitto.url, topic_prefix="", state_dir=tmp_path / "single")
    single.register_device("only")
    with pytest.raises(StandInRequestError):
        single.register_device("second")
    with AzureStandIn(
        mosquitto.url, tmp_path / "s", admin_port=None, keys=SigningKeys.load_or_create(tmp_path / "k", 2048)
    ) as standin:
        hub = standin.hub
        hub.register_device("d1")
        with pytest.raises(StandInRequestError):
            hub.inject_faults("d1", "delete", [500])
        with pytest.raises(StandInRequestError):
            hub.invoke_method("d1", "bad/name")
        with pytest.raises(StandInRequestError):
            hub.invoke_method("d1", "ok", timeout=0)
        with pytest.raises(StandInRequestError):
            standin.mxchip.set_firmware(["d1"], version="", uri="https://h/x")
        with pytest.raises(StandInRequestError):
            standin.mxchip.set_firmware(["d1"], version="1", uri="ftp://h/x")
        adu = standin.adu
        for bad in (
            {},
            {"manifestVersion": "3.0"},
            {"manifestVersion": "5.0", "updateId": "x"},
            {"manifestVersion": "5.0", "updateId": {"provider": "p", "name": "n", "version": "1"}},
            {"manifestVersion": "5.0", "updateId": {"provider": "p", "name": "n", "version": "1.0"}, "files": []},
            {"manifestVersion": "5.0", "updateId": {"provider": "p", "name": "n", "version": "1.0"}, "files": ["x"]},
            {
                "manifestVersion": "5.0",
                "updateId": {"provider": "p", "name": "n", "version": "1.0"},
                "files": [{"filename": "../x"}],
            },
        ):
            with pytest.raises(StandInRequestError):
                adu.import_update(bad, {})
        good = {
            "manifestVersion": "5.0",
            "updateId": {"provider": "p", "name": "n", "version": "1.0"},
            "files": [
                {
                    "filename": "a",
                    "sizeInBytes": 1,
                    "hashes": {"sha256": base64.b64encode(hashlib.sha256(b"a").digest()).decode()},
                }
            ],
        }
        for steps in (None, [{"files": ["a"]}], [{"handler": "a/b:1", "files": ["zz"]}]):
            with pytest.raises(StandInRequestError):
                adu.import_update({**good, "instructions": {"steps": steps}}, {"a": b"a"})
        update_id = adu.import_update(
            {**good, "instructions": {"steps": [{"handler": "a/b:1", "files": ["a"]}]}}, {"a": b"a"}
        )
        with pytest.raises(StandInRequestError):
            adu.create_deployment("bad id!", update_id, ["d1"])
        with pytest.raises(StandInRequestError):
            adu.create_deployment("dep", update_id, [])
        with pytest.raises(StandInRequestError):
            adu.retry_deployment("nope")
        assert adu.agent("d1") is None

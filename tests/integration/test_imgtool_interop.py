"""imgtool interoperability in both directions, and the ``ota keygen/sign/verify`` commands.

Keys are generated at test time by each tool; images signed by imgtool must verify with ours and
images signed by ``ota sign`` must pass ``imgtool verify``. imgtool is a test dependency.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ota_orchestrators.cli import main
from ota_verify.keys import KeyRing, load_private_key, load_public_key
from ota_verify.mcuboot import McubootVerifier, McubootVersion, SignOptions, sign_image
from ota_verify.tools import generate_private_key, private_key_pem

pytest.importorskip("imgtool")

KINDS = ("ecdsa-p256", "ed25519", "rsa-2048")
FIRMWARE = bytes(range(251)) * 40


def imgtool(*arguments: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "imgtool.main", *map(str, arguments)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("kind", KINDS)
def test_imgtool_signed_images_verify_with_ours(tmp_path: Path, kind: str) -> None:
    key = tmp_path / "key.pem"
    assert imgtool("keygen", "-k", key, "-t", kind).returncode == 0
    (tmp_path / "app.bin").write_bytes(FIRMWARE)
    result = imgtool(
        "sign",
        "-k",
        key,
        "-v",
        "1.4.2+77",
        "-H",
        "0x200",
        "-S",
        "0x20000",
        "--pad-header",
        "-s",
        "auto",
        tmp_path / "app.bin",
        tmp_path / "app.signed.bin",
    )
    assert result.returncode == 0, result.stderr
    image = (tmp_path / "app.signed.bin").read_bytes()
    verifier = McubootVerifier(KeyRing([load_public_key(key.read_bytes())]))
    verified = verifier.verify_bytes(image)
    assert verified.version == McubootVersion(1, 4, 2, 77)
    assert verified.security_counter == (1 << 24) | (4 << 16) | 2
    tampered = bytearray(image)
    tampered[0x300] ^= 0x40
    with pytest.raises(Exception, match="mismatch"):
        verifier.verify_bytes(bytes(tampered))
    # Our command line reads imgtool's key and image as well:
    assert main(["verify", "-k", str(key), str(tmp_path / "app.signed.bin")]) == 0


@pytest.mark.parametrize("kind", KINDS)
def test_our_images_pass_imgtool_verify(tmp_path: Path, kind: str) -> None:
    key = generate_private_key(kind)
    key_file = tmp_path / "key.pem"
    key_file.write_bytes(private_key_pem(key))
    for public_key_format in ("hash", "full"):
        options = SignOptions(
            version=McubootVersion(3, 1, 0, 5),
            header_size=0x200,
            slot_size=0x20000,
            pad_header=True,
            security_counter=12,
            public_key_format=public_key_format,
            pad=True,
            confirm=True,
        )
        image_file = tmp_path / f"ours-{public_key_format}.bin"
        image_file.write_bytes(sign_image(FIRMWARE, load_private_key(key_file.read_bytes()), options))
        result = imgtool("verify", "-k", key_file, image_file)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "Image was correctly validated" in result.stdout
        assert "3.1.0+5" in result.stdout


def test_ota_sign_is_byte_identical_to_imgtool_for_ed25519(tmp_path: Path) -> None:
    key = tmp_path / "ed.pem"
    assert main(["keygen", "-t", "ed25519", "-k", str(key)]) == 0
    (tmp_path / "app.bin").write_bytes(FIRMWARE)
    common = [
        "-k",
        str(key),
        "-v",
        "2.0.1",
        "-H",
        "0x200",
        "-S",
        "0x10000",
        "--pad-header",
        "--align",
        "4",
        "-s",
        "auto",
        "--confirm",
        "-d",
        "(1,1.2.0+0)",
    ]
    assert main(["sign", *common, str(tmp_path / "app.bin"), str(tmp_path / "ours.bin")]) == 0
    result = imgtool("sign", *common, tmp_path / "app.bin", tmp_path / "theirs.bin")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "ours.bin").read_bytes() == (tmp_path / "theirs.bin").read_bytes()


def test_ota_verify_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key, other = tmp_path / "k.pem", tmp_path / "other.pem"
    public = tmp_path / "k.pub.pem"
    assert main(["keygen", "-t", "ecdsa-p256", "-k", str(key), "--public", str(public)]) == 0
    assert main(["keygen", "-t", "rsa-2048", "-k", str(other)]) == 0
    (tmp_path / "app.bin").write_bytes(FIRMWARE)
    image = tmp_path / "app.signed.bin"
    assert (
        main(
            [
                "sign",
                "-k",
                str(key),
                "-v",
                "1.0.0",
                "-H",
                "512",
                "-S",
                "65536",
                "--pad-header",
                "--vid",
                "example.com",
                "--cid",
                "sensor-v2",
                str(tmp_path / "app.bin"),
                str(image),
            ]
        )
        == 0
    )
    assert imgtool("verify", "-k", key, image).returncode == 0
    capsys.readouterr()
    assert main(["verify", "-k", str(public), str(image)]) == 0
    assert "image is valid" in capsys.readouterr().out
    assert main(["verify", "-k", str(other), str(image)]) == 1
    assert "INVALID" in capsys.readouterr().out
    data = bytearray(image.read_bytes())
    data[600] ^= 1
    (tmp_path / "bad.bin").write_bytes(bytes(data))
    assert main(["verify", "-k", str(key), str(tmp_path / "bad.bin")]) == 1
    padded = tmp_path / "padded.bin"
    padded.write_bytes(image.read_bytes() + b"\xff" * 64)
    assert main(["verify", "-k", str(key), str(padded)]) == 1
    assert main(["verify", "--allow-trailing", "-k", str(key), str(padded)]) == 0


def test_detached_aws_signature_and_entry(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key = tmp_path / "k.pem"
    assert main(["keygen", "-t", "ecdsa-p256", "-k", str(key)]) == 0
    firmware = tmp_path / "fw.bin"
    firmware.write_bytes(FIRMWARE)
    capsys.readouterr()
    assert (
        main(
            [
                "sign",
                "--detached",
                "-k",
                str(key),
                "--certfile",
                "ota-signer.crt",
                "--filepath",
                "/ota/fw",
                "--entry",
                str(tmp_path / "entry.json"),
                str(firmware),
                str(tmp_path / "fw.sig"),
            ]
        )
        == 0
    )
    entry = json.loads((tmp_path / "entry.json").read_text())
    assert entry["filesize"] == len(FIRMWARE) and entry["certfile"] == "ota-signer.crt"
    assert entry["filepath"] == "/ota/fw" and "sig-sha256-ecdsa" in entry
    assert json.loads(capsys.readouterr().out) == entry
    assert main(["verify", "-k", str(key), "--signature", str(tmp_path / "fw.sig"), str(firmware)]) == 0
    firmware.write_bytes(FIRMWARE + b"!")
    assert main(["verify", "-k", str(key), "--signature", str(tmp_path / "fw.sig"), str(firmware)]) == 1
    from ota_verify.keys import key_hash

    revoked = key_hash(load_public_key(key.read_bytes())).hex()
    firmware.write_bytes(FIRMWARE)
    assert (
        main(["verify", "-k", str(key), "--revoked", revoked, "--signature", str(tmp_path / "fw.sig"), str(firmware)])
        == 1
    )


def test_cli_usage_errors(tmp_path: Path) -> None:
    key = tmp_path / "k.pem"
    assert main(["keygen", "-t", "ed25519", "-k", str(key)]) == 0
    (tmp_path / "a.bin").write_bytes(b"\x00" * 64 + FIRMWARE)

    def sign(*options: str) -> int:
        return main(["sign", *options, str(tmp_path / "a.bin"), str(tmp_path / "o.bin")])

    keyed = ("-k", str(key), "-v", "1", "-H", "64")
    assert sign("-k", str(key)) == 1
    assert sign(*keyed) == 1
    assert sign("-v", "1", "-H", "64", "-S", "9999") == 1
    assert sign(*keyed, "-S", "0x10000", "-s", "many") == 1
    assert sign(*keyed, "-S", "0x10000", "-d", "(x,y)") == 1
    assert sign(*keyed, "-S", "0x100") == 1
    # Without --pad-header the build must leave zeroed header space; this one does:
    assert sign(*keyed, "-S", "0x10000") == 0
    assert imgtool("verify", "-k", key, tmp_path / "o.bin").returncode == 0
    assert main(["verify", "-k", str(tmp_path / "missing.pem"), str(tmp_path / "o.bin")]) == 1
    (tmp_path / "junk.pem").write_text("-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n")
    assert main(["verify", "-k", str(tmp_path / "junk.pem"), str(tmp_path / "o.bin")]) == 1
    with pytest.raises(SystemExit):
        main(["keygen", "-t", "dsa-1024", "-k", str(key)])


def test_cli_more_paths(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    key = tmp_path / "enc.pem"
    monkeypatch.setattr(sys, "stdin", io.StringIO("secret\n"))
    assert main(["keygen", "-t", "ecdsa-p256", "-k", str(key), "-p"]) == 0
    assert b"ENCRYPTED" in key.read_bytes()
    (tmp_path / "app.bin").write_bytes(FIRMWARE)
    # No key: a hash-only image, as imgtool makes; verification refuses it.
    assert (
        main(
            [
                "sign",
                "-v",
                "1.0.0",
                "-H",
                "0x20",
                "-S",
                "0x10000",
                "--pad-header",
                str(tmp_path / "app.bin"),
                str(tmp_path / "unsigned.bin"),
            ]
        )
        == 0
    )
    assert "UNSIGNED" in capsys.readouterr().out
    plain = tmp_path / "plain.pem"
    assert main(["keygen", "-t", "ed25519", "-k", str(plain)]) == 0
    assert main(["verify", "-k", str(plain), str(tmp_path / "unsigned.bin")]) == 1
    assert main(["sign", "--detached", str(tmp_path / "app.bin")]) == 1
    with pytest.raises(SystemExit):
        main(["sign", "-k", str(plain), "-v", "1", "-H", "zz", "-S", "1", str(tmp_path / "app.bin")])
    # Raw (not base64) detached signature files are accepted too:
    assert main(["sign", "--detached", "-k", str(plain), str(tmp_path / "app.bin"), str(tmp_path / "a.sig")]) == 0
    from ota_verify.signatures import decode_base64

    (tmp_path / "raw.sig").write_bytes(decode_base64((tmp_path / "a.sig").read_text()))
    assert main(["verify", "-k", str(plain), "--signature", str(tmp_path / "raw.sig"), str(tmp_path / "app.bin")]) == 0
    assert main(["keygen", "-t", "ed25519", "-k", str(tmp_path / "missing-dir" / "k.pem")]) == 1
    image = tmp_path / "dep.bin"
    assert (
        main(
            [
                "sign",
                "-k",
                str(plain),
                "-v",
                "1.0.0",
                "-H",
                "0x20",
                "-S",
                "0x10000",
                "--pad-header",
                "-d",
                "(2, 1.0.0), (3,2.0.0+1)",
                str(tmp_path / "app.bin"),
                str(image),
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert main(["verify", "-k", str(plain), str(image)]) == 0
    out = capsys.readouterr().out
    assert "depends on image 2 >= 1.0.0+0" in out and "depends on image 3 >= 2.0.0+1" in out


def test_verify_with_code_signing_certificate(tmp_path: Path) -> None:
    import datetime

    from cryptography.hazmat.primitives import serialization

    from tests.verify_fixtures import make_certificate

    root_key, signer_key = generate_private_key("ecdsa-p384"), generate_private_key("ecdsa-p256")
    now = datetime.datetime.now(datetime.UTC)
    root = make_certificate("Root", root_key, ca=True, not_before=now - datetime.timedelta(days=1))
    signer = make_certificate(
        "Signer", signer_key, issuer=("Root", root_key), not_before=now - datetime.timedelta(days=1)
    )
    expired = make_certificate(
        "Old",
        signer_key,
        issuer=("Root", root_key),
        not_before=now - datetime.timedelta(days=9),
        not_after=now - datetime.timedelta(days=1),
    )
    (tmp_path / "root.pem").write_bytes(root.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "signer.pem").write_bytes(signer.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "old.pem").write_bytes(expired.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(private_key_pem(signer_key))
    (tmp_path / "fw.bin").write_bytes(FIRMWARE)
    assert (
        main(
            ["sign", "--detached", "-k", str(tmp_path / "key.pem"), str(tmp_path / "fw.bin"), str(tmp_path / "fw.sig")]
        )
        == 0
    )
    common = ["--signature", str(tmp_path / "fw.sig"), str(tmp_path / "fw.bin")]
    assert main(["verify", "--ca", str(tmp_path / "root.pem"), "--cert", str(tmp_path / "signer.pem"), *common]) == 0
    assert main(["verify", "--ca", str(tmp_path / "root.pem"), "--cert", str(tmp_path / "old.pem"), *common]) == 1
    assert (
        main(
            [
                "verify",
                "--expiry",
                "ignore",
                "--ca",
                str(tmp_path / "root.pem"),
                "--cert",
                str(tmp_path / "old.pem"),
                *common,
            ]
        )
        == 0
    )
    assert main(["verify", "--ca", str(tmp_path / "signer.pem"), "--cert", str(tmp_path / "signer.pem"), *common]) == 1
    assert main(["verify", "--cert", str(tmp_path / "signer.pem"), *common]) == 1
    assert main(["verify", "--ca", str(tmp_path / "root.pem"), *common]) == 1
    assert main(["verify", *common]) == 1


@pytest.mark.parametrize("kind", ["ecdsa-p256", "ed25519", "rsa-2048"])
def test_external_signing_round_trips_with_imgtool(tmp_path: Path, kind: str) -> None:
    import base64

    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, utils

    key = generate_private_key(kind)
    (tmp_path / "key.pem").write_bytes(private_key_pem(key))
    from ota_verify.tools import public_key_pem

    (tmp_path / "pub.pem").write_bytes(public_key_pem(key.public_key()))
    (tmp_path / "app.bin").write_bytes(FIRMWARE)
    common = ["-v", "1.0.0+3", "-H", "0x200", "-S", "0x20000", "--pad-header", "-s", "7"]
    # Both tools export the same vectors to sign.
    for vector in ("payload", "digest"):
        assert (
            main(
                [
                    "sign",
                    *common,
                    "--vector-to-sign",
                    vector,
                    str(tmp_path / "app.bin"),
                    str(tmp_path / f"ours.{vector}"),
                ]
            )
            == 0
        )
        result = imgtool(
            "sign",
            "-k",
            tmp_path / "key.pem",
            *common,
            "--vector-to-sign",
            vector,
            tmp_path / "app.bin",
            tmp_path / f"theirs.{vector}",
        )
        assert result.returncode == 0, result.stderr
        assert (tmp_path / f"ours.{vector}").read_bytes() == (tmp_path / f"theirs.{vector}").read_bytes()
    # Sign the digest "in the HSM", then build the image with the fixed signature.
    digest = (tmp_path / "ours.digest").read_bytes()
    if isinstance(key, ec.EllipticCurvePrivateKey):
        signature = key.sign(digest, ec.ECDSA(utils.Prehashed(hashes.SHA256())))
    elif isinstance(key, ed25519.Ed25519PrivateKey):
        signature = key.sign(digest)
    else:
        pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
        signature = key.sign(digest, pss, utils.Prehashed(hashes.SHA256()))
    (tmp_path / "hsm.sig").write_bytes(base64.b64encode(signature))
    fix = ["--fix-sig", str(tmp_path / "hsm.sig"), "--fix-sig-pubkey", str(tmp_path / "pub.pem")]
    assert main(["sign", *common, *fix, str(tmp_path / "app.bin"), str(tmp_path / "ours.bin")]) == 0
    assert imgtool("verify", "-k", tmp_path / "key.pem", tmp_path / "ours.bin").returncode == 0
    result = imgtool(
        "sign",
        *common,
        "--fix-sig",
        tmp_path / "hsm.sig",
        "--fix-sig-pubkey",
        tmp_path / "pub.pem",
        tmp_path / "app.bin",
        tmp_path / "theirs.bin",
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "theirs.bin").read_bytes() == (tmp_path / "ours.bin").read_bytes()
    assert main(["verify", "-k", str(tmp_path / "pub.pem"), str(tmp_path / "theirs.bin")]) == 0
    # --sig-out gives the signature of a normally signed image.
    assert (
        main(
            [
                "sign",
                "-k",
                str(tmp_path / "key.pem"),
                *common,
                "--sig-out",
                str(tmp_path / "out.sig"),
                str(tmp_path / "app.bin"),
                str(tmp_path / "signed.bin"),
            ]
        )
        == 0
    )
    assert base64.b64decode((tmp_path / "out.sig").read_bytes())
    # A signature over something else is refused before it is written into an image.
    (tmp_path / "wrong.sig").write_bytes(base64.b64encode(signature[:-1] + bytes([signature[-1] ^ 1])))
    assert (
        main(
            [
                "sign",
                *common,
                "--fix-sig",
                str(tmp_path / "wrong.sig"),
                "--fix-sig-pubkey",
                str(tmp_path / "pub.pem"),
                str(tmp_path / "app.bin"),
                str(tmp_path / "bad.bin"),
            ]
        )
        == 1
    )
    assert (
        main(["sign", *common, "--fix-sig", str(tmp_path / "hsm.sig"), str(tmp_path / "app.bin"), str(tmp_path / "x")])
        == 1
    )
    assert (
        main(["sign", *common, "--sig-out", str(tmp_path / "n.sig"), str(tmp_path / "app.bin"), str(tmp_path / "x")])
        == 1
    )
    assert (
        main(["sign", "-k", str(tmp_path / "key.pem"), *common, *fix, str(tmp_path / "app.bin"), str(tmp_path / "x")])
        == 1
    )


def test_external_signing_with_p384_picks_sha384(tmp_path: Path) -> None:
    import base64

    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, utils

    from ota_verify.tools import public_key_pem

    key = generate_private_key("ecdsa-p384")
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    (tmp_path / "pub.pem").write_bytes(public_key_pem(key.public_key()))
    (tmp_path / "key.pem").write_bytes(private_key_pem(key))
    (tmp_path / "app.bin").write_bytes(FIRMWARE)
    common = ["-v", "2.0.0", "-H", "0x200", "-S", "0x20000", "--pad-header"]
    pub = ["--fix-sig-pubkey", str(tmp_path / "pub.pem")]
    assert (
        main(["sign", *common, *pub, "--vector-to-sign", "digest", str(tmp_path / "app.bin"), str(tmp_path / "d")]) == 0
    )
    digest = (tmp_path / "d").read_bytes()
    assert len(digest) == 48
    (tmp_path / "s").write_bytes(base64.b64encode(key.sign(digest, ec.ECDSA(utils.Prehashed(hashes.SHA384())))))
    assert (
        main(["sign", *common, *pub, "--fix-sig", str(tmp_path / "s"), str(tmp_path / "app.bin"), str(tmp_path / "o")])
        == 0
    )
    assert imgtool("verify", "-k", tmp_path / "key.pem", tmp_path / "o").returncode == 0
    assert main(["sign", *common, *pub, str(tmp_path / "app.bin"), str(tmp_path / "x")]) == 1

"""``ota keygen``, ``ota sign`` and ``ota verify``: signing tools with imgtool's option spelling.

A build script written for imgtool (``imgtool sign -k key.pem -v 1.2.3 -H 0x200 -S 0x40000 --pad-header
app.bin app.signed.bin``) can call ``ota`` with the same options. ``ota sign --detached`` makes an
AWS-style detached signature and the matching ``afr_ota`` file entry instead. ``ota verify`` exits 0 for
a valid image or signature and 1 for an invalid one. The logic lives in ``ota_verify``; this module
only reads options and files and prints results.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import uuid
from pathlib import Path
from typing import Any

from ota_core.errors import ConfigurationError, VerificationError
from ota_verify.certificates import CertificateVerifier, ExpiryPolicy, load_certificates
from ota_verify.keys import KeyRing, load_private_key, load_public_key
from ota_verify.mcuboot import Dependency, McubootVerifier, McubootVersion, SignOptions, build_image
from ota_verify.signatures import decode_base64
from ota_verify.tools import (
    KEY_TYPES,
    afr_ota_file_entry,
    generate_private_key,
    imgtool_uuid,
    private_key_pem,
    public_key_pem,
    sign_detached,
    verify_detached,
)

__all__ = ["register"]

EXIT_VALID = 0
EXIT_INVALID = 1


def _integer(text: str) -> int:
    try:
        return int(text, 0)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from error


def register(subparsers: Any) -> None:
    """Add the ``keygen``, ``sign`` and ``verify`` subcommands."""
    keygen = subparsers.add_parser("keygen", help="generate a signing key (imgtool keygen options)")
    keygen.add_argument("-k", "--key", required=True, type=Path, help="private key file to write (PEM)")
    keygen.add_argument("-t", "--type", required=True, choices=KEY_TYPES, help="key type")
    keygen.add_argument("-p", "--password", action="store_true", help="encrypt the key (password from stdin)")
    keygen.add_argument("--public", type=Path, default=None, help="also write the public key (PEM) here")
    keygen.set_defaults(handler=_keygen)

    sign = subparsers.add_parser("sign", help="sign a firmware file into an MCUboot image, or --detached")
    sign.add_argument("-k", "--key", type=Path, default=None, help="private signing key (PEM/DER); none: hash only")
    sign.add_argument("-v", "--version", default=None, help="image version M.m.r+b (MCUboot)")
    sign.add_argument("-H", "--header-size", type=_integer, default=None, help="header size (MCUboot)")
    sign.add_argument("-S", "--slot-size", type=_integer, default=None, help="slot size (MCUboot)")
    sign.add_argument("--pad-header", action="store_true", help="prepend --header-size erased bytes")
    sign.add_argument("--align", type=int, default=1, choices=(1, 2, 4, 8, 16, 32), help="flash write alignment")
    sign.add_argument("--max-align", type=int, default=None, choices=(8, 16, 32), help="maximum flash alignment")
    sign.add_argument("-M", "--max-sectors", type=int, default=128, help="sectors the trailer allows for")
    sign.add_argument("--overwrite-only", action="store_true", help="overwrite-only trailer size")
    sign.add_argument("--pad", action="store_true", help="pad to --slot-size, adding the trailer magic")
    sign.add_argument("--confirm", action="store_true", help="pad and mark the image confirmed")
    sign.add_argument("-s", "--security-counter", default=None, help="security counter value or 'auto'")
    sign.add_argument("-d", "--dependencies", default=None, help='dependencies "(id,M.m.r+b), ..."')
    sign.add_argument("--public-key-format", choices=("hash", "full"), default="hash")
    sign.add_argument("--vid", default=None, help="vendor UUID or domain name (UUID_VID TLV)")
    sign.add_argument("--cid", default=None, help="image class UUID or name (UUID_CID TLV)")
    sign.add_argument("--load-addr", type=_integer, default=0, help="load address for the header")
    sign.add_argument("-R", "--erased-val", type=_integer, default=0xFF, choices=(0, 0xFF), help="erased value")
    sign.add_argument(
        "--vector-to-sign", choices=("payload", "digest"), default=None, help="write what an external signer signs"
    )
    sign.add_argument("--sig-out", type=Path, default=None, help="also write the image signature (base64) here")
    sign.add_argument("--fix-sig", type=Path, default=None, help="use this external signature (base64 file)")
    sign.add_argument(
        "--fix-sig-pubkey",
        type=Path,
        default=None,
        help="public key of the external signer (with --fix-sig/--vector-to-sign)",
    )
    sign.add_argument("--detached", action="store_true", help="AWS-style detached signature instead of MCUboot")
    sign.add_argument("--certfile", default=None, help="code-signing certificate name for the afr_ota entry")
    sign.add_argument("--filepath", default=None, help="device file path for the afr_ota entry")
    sign.add_argument("--fileid", type=int, default=0, help="stream file id for the afr_ota entry")
    sign.add_argument("--entry", type=Path, default=None, help="write the afr_ota file entry (JSON) here")
    sign.add_argument("infile", type=Path, help="firmware file")
    sign.add_argument("outfile", type=Path, nargs="?", default=None, help="signed image / signature file")
    sign.set_defaults(handler=_sign)

    verify = subparsers.add_parser("verify", help="verify an MCUboot image, or a file and detached signature")
    verify.add_argument("-k", "--key", type=Path, action="append", default=[], help="trusted public key (repeatable)")
    verify.add_argument(
        "--cert", type=Path, default=None, help="code-signing certificate (PEM, may include intermediates); needs --ca"
    )
    verify.add_argument("--ca", type=Path, action="append", default=[], help="trusted root certificate (repeatable)")
    verify.add_argument(
        "--expiry",
        choices=[policy.value for policy in ExpiryPolicy],
        default=ExpiryPolicy.WHEN_CLOCK_PLAUSIBLE.value,
        help="how certificate dates are checked",
    )
    verify.add_argument("--signature", type=Path, default=None, help="detached signature file (base64 or raw)")
    verify.add_argument("--revoked", action="append", default=[], help="revoked key hash (hex SHA-256 of SPKI)")
    verify.add_argument("--allow-trailing", action="store_true", help="accept slot padding after the image")
    verify.add_argument("image", type=Path, help="MCUboot image, or the signed file with --signature")
    verify.set_defaults(handler=_verify)


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise ConfigurationError(f"cannot read {what} {path}: {error.strerror}") from error


def _write(path: Path, data: bytes, what: str) -> None:
    try:
        path.write_bytes(data)
    except OSError as error:
        raise ConfigurationError(f"cannot write {what} {path}: {error.strerror}") from error


def _keygen(arguments: argparse.Namespace) -> int:
    password = sys.stdin.readline().rstrip("\n").encode() if arguments.password else None
    key = generate_private_key(arguments.type)
    _write(arguments.key, private_key_pem(key, password), "key")
    if arguments.public is not None:
        _write(arguments.public, public_key_pem(key.public_key()), "public key")
    print(f"wrote {arguments.type} key to {arguments.key}")
    return EXIT_VALID


def _parse_dependencies(text: str) -> tuple[Dependency, ...]:
    found = []
    for item in text.replace(" ", "").split("),"):
        body = item.strip("()")
        if not body:
            continue
        image_id, _, version = body.partition(",")
        try:
            found.append(Dependency(int(image_id), McubootVersion.parse(version)))
        except (ValueError, VerificationError) as error:
            raise ConfigurationError(f"bad dependency {item!r}: use (image_id,M.m.r+b)") from error
    return tuple(found)


def _sign(arguments: argparse.Namespace) -> int:
    key = None
    if arguments.key is not None:
        key = load_private_key(_read(arguments.key, "key"), source=str(arguments.key))
    elif arguments.detached:
        raise ConfigurationError("a detached signature needs a signing key (-k/--key)")
    fixed_signature = fixed_key = signer_key = None
    if arguments.fix_sig_pubkey is not None:
        signer_key = load_public_key(_read(arguments.fix_sig_pubkey, "key"), source=str(arguments.fix_sig_pubkey))
    if arguments.fix_sig is not None:
        if signer_key is None:
            raise ConfigurationError("--fix-sig needs the signer's public key (--fix-sig-pubkey)")
        fixed_signature = decode_base64(_read(arguments.fix_sig, "signature"), what=str(arguments.fix_sig))
        fixed_key = signer_key
    elif signer_key is not None and arguments.vector_to_sign is None:
        raise ConfigurationError("--fix-sig-pubkey is used with --fix-sig or --vector-to-sign")
    data = _read(arguments.infile, "firmware")
    if arguments.detached:
        assert key is not None
        signature = sign_detached(data, key)
        if arguments.outfile is not None:
            _write(arguments.outfile, signature.base64.encode() + b"\n", "signature")
        entry = afr_ota_file_entry(
            signature,
            filepath=arguments.filepath or arguments.infile.name,
            certfile=arguments.certfile,
            fileid=arguments.fileid,
        )
        text = json.dumps(entry, indent=2)
        if arguments.entry is not None:
            _write(arguments.entry, text.encode() + b"\n", "afr_ota entry")
        print(text)
        return EXIT_VALID
    if arguments.outfile is None or arguments.version is None or arguments.header_size is None:
        raise ConfigurationError("MCUboot signing needs -v/--version, -H/--header-size, INFILE and OUTFILE")
    if arguments.slot_size is None:
        raise ConfigurationError("MCUboot signing needs -S/--slot-size")
    counter: int | str | None = arguments.security_counter
    if isinstance(counter, str) and counter != "auto":
        try:
            counter = int(counter, 0)
        except ValueError as error:
            raise ConfigurationError(f"security counter must be an integer or 'auto', got {counter!r}") from error
    vid = imgtool_uuid(arguments.vid, uuid.NAMESPACE_DNS) if arguments.vid else None
    cid = imgtool_uuid(arguments.cid, uuid.UUID(bytes=vid) if vid else None) if arguments.cid else None
    options = SignOptions(
        version=McubootVersion.parse(arguments.version),
        header_size=arguments.header_size,
        slot_size=arguments.slot_size,
        pad_header=arguments.pad_header,
        pad=arguments.pad or arguments.confirm,
        confirm=arguments.confirm,
        align=arguments.align,
        max_align=arguments.max_align,
        max_sectors=arguments.max_sectors,
        overwrite_only=arguments.overwrite_only,
        erased_val=arguments.erased_val,
        load_addr=arguments.load_addr,
        security_counter=counter,
        dependencies=_parse_dependencies(arguments.dependencies) if arguments.dependencies else (),
        vendor_uuid=vid,
        class_uuid=cid,
        public_key_format=arguments.public_key_format,
    )
    built = build_image(
        data, key, options, fixed_signature=fixed_signature, fixed_public_key=fixed_key, signer_public_key=signer_key
    )
    if arguments.vector_to_sign is not None:
        vector = built.signed_region if arguments.vector_to_sign == "payload" else built.digest
        _write(arguments.outfile, vector, "vector to sign")
        print(
            f"wrote the {arguments.vector_to_sign} to sign ({len(vector)} bytes, {built.hash_algorithm}) "
            f"to {arguments.outfile}"
        )
        return EXIT_VALID
    image = built.image
    _write(arguments.outfile, image, "image")
    if arguments.sig_out is not None:
        if built.signature is None:
            raise ConfigurationError("--sig-out needs a signed image")
        _write(arguments.sig_out, base64.b64encode(built.signature), "signature")
    kind = "signed" if built.signature is not None else "UNSIGNED (hash only; devices refuse it by default)"
    print(f"wrote {kind} image {arguments.outfile} ({len(image)} bytes, version {options.version})")
    return EXIT_VALID


def _verify(arguments: argparse.Namespace) -> int:
    keys = [load_public_key(_read(path, "key"), source=str(path)) for path in arguments.key]
    ring = KeyRing(keys, revoked=arguments.revoked)
    data = _read(arguments.image, "image")
    if arguments.cert is not None:
        if not arguments.ca:
            raise ConfigurationError("--cert needs at least one trusted root (--ca)")
        roots = [cert for path in arguments.ca for cert in load_certificates(_read(path, "root"), source=str(path))]
        checker = CertificateVerifier(roots, expiry=ExpiryPolicy(arguments.expiry), key_ring=ring)
        try:
            ring.add(checker.verify(_read(arguments.cert, "certificate")), str(arguments.cert))
        except VerificationError as error:
            print(f"INVALID: {error}")
            return EXIT_INVALID
    elif arguments.ca:
        raise ConfigurationError("--ca is used with --cert")
    if not arguments.key and arguments.cert is None:
        raise ConfigurationError("give a trusted key (-k/--key) or a certificate (--cert with --ca)")
    try:
        if arguments.signature is not None:
            raw = _read(arguments.signature, "signature")
            try:
                signature = decode_base64(raw.decode("ascii"))
            except (UnicodeDecodeError, VerificationError):
                signature = raw
            errors: list[VerificationError] = []
            for trusted in ring:
                try:
                    verify_detached(data, signature, trusted.key)
                except VerificationError as error:
                    errors.append(error)
                    continue
                print(f"signature is valid ({len(data)} bytes, key {trusted.key_hash.hex()[:16]})")
                return EXIT_VALID
            if not ring.keys():
                print("INVALID: every given key is revoked")
                return EXIT_INVALID
            raise errors[-1]
        # The command line has no device to check dependencies against: it reports them instead.
        verifier = McubootVerifier(ring, check_dependencies=False)
        result = verifier.verify_bytes(data, allow_trailing=arguments.allow_trailing)
    except VerificationError as error:
        print(f"INVALID: {error}")
        return EXIT_INVALID
    print("image is valid")
    print(f"  version:          {result.version}")
    print(f"  digest ({result.hash_algorithm}): {result.digest.hex()}")
    if result.security_counter is not None:
        print(f"  security counter: {result.security_counter}")
    for dependency in result.dependencies:
        print(f"  depends on image {dependency.image_id} >= {dependency.min_version}")
    return EXIT_VALID

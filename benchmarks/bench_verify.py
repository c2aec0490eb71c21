"""Verification cost: streaming checks vs plain hashlib on the same bytes, and per-signature verify cost.

Run by hand (not in CI):  .venv/bin/python benchmarks/bench_verify.py [--mib 256] [--repeat 3]

Part 1 feeds the same in-memory buffer to ``FileChecker`` (exact size + SHA-256), to ``PlanVerifier``'s
checker (SHA-256 + an ECDSA-P256 file signature checked at the end) and to ``McubootVerifier`` (a whole
MCUboot image), and compares each with ``hashlib.sha256`` over the same blocks. Part 2 times one
signature check through ``ota_verify.verify_signature`` against a direct ``cryptography`` call, and a
full Device Update JWS chain.
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import time
from collections.abc import Callable

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa, utils

from ota_core.models import FileTarget, Integrity, Signature, UpdatePlan
from ota_verify.adu import AduManifestVerifier, sign_adu_manifest
from ota_verify.digests import FileChecker
from ota_verify.keys import KeyRing, PublicKey
from ota_verify.mcuboot import McubootVerifier, McubootVersion, SignOptions, sign_image
from ota_verify.signatures import SignatureAlgorithm, SignatureScheme, verify_signature
from ota_verify.tools import generate_private_key, sign_detached
from ota_verify.verifier import PlanVerifier

MIB = 1024 * 1024


def best_of(repeat: int, run: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def compare(repeat: int, ours: Callable[[], object], base: Callable[[], object]) -> tuple[float, float, float]:
    """Best times of ``ours`` and ``base`` and the median of the paired ratios (base time / our time).

    The two run alternately so that noise from other processes hits both alike.
    """
    ours_times, base_times = [], []
    for _ in range(repeat):
        base_times.append(best_of(1, base))
        ours_times.append(best_of(1, ours))
    ratios = [b / o for b, o in zip(base_times, ours_times, strict=True)]
    return min(ours_times), min(base_times), statistics.median(ratios)


def stream(data: memoryview, block: int, update: Callable[[memoryview], object]) -> None:
    for offset in range(0, len(data), block):
        update(data[offset : offset + block])


def part1(mib: int, repeat: int) -> None:
    payload = bytes(range(256)) * (mib * MIB // 256)
    data = memoryview(payload)
    key = generate_private_key("ecdsa-p256")
    signature = sign_detached(payload, key)
    digest = hashlib.sha256(payload).digest()

    def baseline(block: int) -> Callable[[], object]:
        def run() -> bytes:
            hasher = hashlib.sha256()
            stream(data, block, hasher.update)
            return hasher.digest()

        return run

    def checker(block: int) -> Callable[[], object]:
        def run() -> None:
            check = FileChecker(len(payload), digests={"sha256": digest})
            stream(data, block, check.update)  # type: ignore[arg-type]
            check.finish()

        return run

    target = FileTarget(
        "fw.bin", len(payload), integrity=Integrity(signatures=(Signature(signature.value, "SHA256", "ECDSA"),))
    )
    plan = UpdatePlan("bench", "aws-afr-ota", (target,))
    verifier = PlanVerifier(key_ring=KeyRing([key.public_key()]))

    def plan_checker(block: int) -> Callable[[], object]:
        def run() -> None:
            verifier.check_plan(plan)
            check = verifier.begin(plan, target)
            stream(data, block, check.update)  # type: ignore[arg-type]
            check.finish()

        return run

    image = sign_image(payload, key, SignOptions(version=McubootVersion(1, 0, 0), header_size=0x200, pad_header=True))
    image_verifier = McubootVerifier(KeyRing([key.public_key()]))
    image_view = memoryview(image)

    def image_baseline() -> bytes:
        hasher = hashlib.sha256()
        stream(image_view, 256 * 1024, hasher.update)
        return hasher.digest()

    print(f"## Streaming verification of {mib} MiB (best of {repeat})\n")
    print("| check | block | ours MiB/s | hashlib MiB/s | ratio of bests | median paired ratio |")
    print("|---|---|---|---|---|---|")
    rows = [
        ("FileChecker (size + SHA-256)", 4096, checker(4096), baseline(4096)),
        ("FileChecker (size + SHA-256)", 65536, checker(65536), baseline(65536)),
        ("PlanVerifier (SHA-256 + ECDSA-P256 file signature)", 65536, plan_checker(65536), baseline(65536)),
        (
            "McubootVerifier (whole image, ECDSA-P256)",
            262144,
            lambda: image_verifier.verify_bytes(image),
            image_baseline,
        ),
    ]
    for name, block, ours, base in rows:
        ours_time, base_time, paired = compare(repeat, ours, base)
        print(
            f"| {name} | {block} | {mib / ours_time:,.0f} | {mib / base_time:,.0f} | "
            f"{base_time / ours_time:.3f} | {paired:.3f} |"
        )
    print()


def _signature_cases() -> list[tuple[str, PublicKey, bytes, SignatureScheme, bytes, Callable[[], None]]]:
    """(name, key, signature, scheme, digest, direct cryptography call) for every supported algorithm."""
    message = b"m" * 1024
    cases: list[tuple[str, PublicKey, bytes, SignatureScheme, bytes, Callable[[], None]]] = []
    for curve, name, algorithm, hash_name in (
        (ec.SECP256R1(), "ECDSA-P256", hashes.SHA256(), "sha256"),
        (ec.SECP384R1(), "ECDSA-P384", hashes.SHA384(), "sha384"),
    ):
        ec_key = ec.generate_private_key(curve)
        hashed = hashlib.new(hash_name, message).digest()
        ec_sig = ec_key.sign(hashed, ec.ECDSA(utils.Prehashed(algorithm)))
        ec_pub = ec_key.public_key()

        def direct_ec(
            pub: ec.EllipticCurvePublicKey = ec_pub,
            sig: bytes = ec_sig,
            hashed: bytes = hashed,
            algorithm: hashes.HashAlgorithm = algorithm,
        ) -> None:
            pub.verify(sig, hashed, ec.ECDSA(utils.Prehashed(algorithm)))

        scheme = SignatureScheme(SignatureAlgorithm.ECDSA, hash_name, "der")
        cases.append((name, ec_pub, ec_sig, scheme, hashed, direct_ec))
    digest = hashlib.sha256(message).digest()
    ed_key = ed25519.Ed25519PrivateKey.generate()
    ed_sig = ed_key.sign(digest)
    ed_pub = ed_key.public_key()

    def direct_ed() -> None:
        ed_pub.verify(ed_sig, digest)

    cases.append(
        ("Ed25519 (over digest)", ed_pub, ed_sig, SignatureScheme(SignatureAlgorithm.ED25519), digest, direct_ed)
    )
    for bits in (2048, 3072):
        rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
        rsa_pub = rsa_key.public_key()
        pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
        for label, pad, scheme in (
            ("PSS", pss, SignatureScheme(SignatureAlgorithm.RSA_PSS, pss_salt_length=32)),
            ("PKCS#1 v1.5", padding.PKCS1v15(), SignatureScheme(SignatureAlgorithm.RSA_PKCS1V15)),
        ):
            rsa_sig = rsa_key.sign(digest, pad, utils.Prehashed(hashes.SHA256()))

            def direct_rsa(
                pub: rsa.RSAPublicKey = rsa_pub, sig: bytes = rsa_sig, pad: padding.AsymmetricPadding = pad
            ) -> None:
                pub.verify(sig, digest, pad, utils.Prehashed(hashes.SHA256()))

            cases.append((f"RSA-{bits} {label}", rsa_pub, rsa_sig, scheme, digest, direct_rsa))
    return cases


def part2(repeat: int) -> None:
    count = 2000
    print(f"## One signature check over a digest (median of {repeat} runs of {count})\n")
    print("| algorithm | ota_verify µs | cryptography µs | ratio |")
    print("|---|---|---|---|")
    for name, pub, sig, scheme, hashed, direct in _signature_cases():

        def ours(
            pub: PublicKey = pub, sig: bytes = sig, scheme: SignatureScheme = scheme, hashed: bytes = hashed
        ) -> None:
            for _ in range(count):
                verify_signature(pub, sig, scheme, digest=hashed)

        def base(direct: Callable[[], None] = direct) -> None:
            for _ in range(count):
                direct()

        ours_us = statistics.median(best_of(1, ours) for _ in range(repeat)) / count * 1e6
        base_us = statistics.median(best_of(1, base) for _ in range(repeat)) / count * 1e6
        print(f"| {name} | {ours_us:.1f} | {base_us:.1f} | {base_us / ours_us:.2f} |")
    root = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    signer = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    manifest = '{"updateId":{"provider":"p","name":"n","version":"1.0"},"files":{}}'
    token = sign_adu_manifest(manifest, root_key=root, root_kid="R", signing_key=signer, signing_kid="S")
    adu = AduManifestVerifier({"R": root.public_key()})

    def chain() -> None:
        for _ in range(200):
            adu.verify(manifest, token)

    adu_us = statistics.median(best_of(1, chain) for _ in range(repeat)) / 200 * 1e6
    print(f"\nDevice Update JWS chain (RSA-3072 root, RSA-3072 signing key, manifest hash): {adu_us:.0f} µs\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=256, help="size of the streamed image in MiB")
    parser.add_argument("--repeat", type=int, default=3, help="repetitions (best or median is reported)")
    arguments = parser.parse_args()
    part1(arguments.mib, arguments.repeat)
    part2(arguments.repeat)


if __name__ == "__main__":
    main()

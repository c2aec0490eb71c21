"""ota_verify: Verify.

Streaming digests and CRCs, signatures and code-signing certificates, MCUboot images (imgtool
compatible), Device Update manifest signatures (JWS), anti-rollback policy and the signing tools.
"""

__all__: list[str] = []

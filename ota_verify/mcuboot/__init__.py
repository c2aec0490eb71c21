"""MCUboot images: parse, verify (an ``ImageValidator``) and sign, interoperable with imgtool 2.5."""

from ota_verify.mcuboot._format import (
    FLAG_NAMES,
    IMAGE_MAGIC,
    TLV_NAMES,
    ImageHeader,
    McubootVersion,
    ParsedImage,
    Tlv,
    TlvType,
    parse_image,
)
from ota_verify.mcuboot._sign import (
    BOOT_MAGIC,
    BuiltImage,
    SignOptions,
    build_image,
    imgtool_trailer_size,
    sign_image,
)
from ota_verify.mcuboot._verify import (
    DEFAULT_ALLOWED_FLAGS,
    Dependency,
    McubootStreamChecker,
    McubootVerifier,
    VerifiedImage,
    parse_dependencies,
)

__all__ = [
    "BOOT_MAGIC",
    "DEFAULT_ALLOWED_FLAGS",
    "FLAG_NAMES",
    "IMAGE_MAGIC",
    "TLV_NAMES",
    "BuiltImage",
    "Dependency",
    "ImageHeader",
    "McubootStreamChecker",
    "McubootVerifier",
    "McubootVersion",
    "ParsedImage",
    "SignOptions",
    "Tlv",
    "TlvType",
    "VerifiedImage",
    "build_image",
    "imgtool_trailer_size",
    "parse_dependencies",
    "parse_image",
    "sign_image",
]

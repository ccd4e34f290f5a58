"""Untrusted image bytes -> BGR array, refusing anything that is not a plain, bounded image.

Uploads are sniffed by their magic bytes (JPEG, PNG, WebP only) and their dimensions are read
from the header before OpenCV decodes a single pixel, so a tiny file that claims to be a
100 000 x 100 000 image (a decompression bomb) is refused without allocating it. The decoded
size is checked again afterwards, because a header can lie.
"""

from __future__ import annotations

import struct

import cv2
import numpy as np


class ImageError(ValueError):
    """The bytes are not an image this server accepts; the message is safe to show the client."""


FORMATS = ("jpeg", "png", "webp")


def sniff_format(data: bytes) -> str | None:
    """'jpeg' | 'png' | 'webp' from the magic bytes, else None."""
    if data[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


# JPEG start-of-frame markers (baseline, progressive, lossless, arithmetic...): not C4 (DHT),
# C8 (JPG extension) or CC (DAC), which share the range.
_SOF_MARKERS = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
# Markers that stand alone, without a length field.
_STANDALONE = frozenset({0x01, *range(0xD0, 0xD9)})


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    i, n = 2, len(data)
    while i + 4 <= n:
        if data[i] != 0xFF:
            return None  # lost sync: not a well-formed marker stream
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in _STANDALONE:
            i += 2
            continue
        if marker == 0xD9 or marker == 0xDA:  # EOI or start of scan before any frame header
            return None
        (length,) = struct.unpack(">H", data[i + 2:i + 4])
        if marker in _SOF_MARKERS:
            if i + 9 > n:
                return None
            height, width = struct.unpack(">HH", data[i + 5:i + 9])
            return width, height
        if length < 2:
            return None
        i += 2 + length
    return None


def _png_size(data: bytes) -> tuple[int, int] | None:
    if len(data) < 24 or data[12:16] != b"IHDR":
        return None
    return struct.unpack(">II", data[16:24])


def _webp_size(data: bytes) -> tuple[int, int] | None:
    if len(data) < 30:
        return None
    chunk = data[12:16]
    if chunk == b"VP8 ":  # lossy: frame tag (3), start code (3), 14-bit width and height
        if data[23:26] != b"\x9d\x01\x2a":
            return None
        w, h = struct.unpack("<HH", data[26:30])
        return w & 0x3FFF, h & 0x3FFF
    if chunk == b"VP8L":  # lossless: signature byte, then 14-bit (width-1), 14-bit (height-1)
        if data[20] != 0x2F:
            return None
        (bits,) = struct.unpack("<I", data[21:25])
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X":  # extended: 24-bit (canvas width-1) and (canvas height-1)
        w = int.from_bytes(data[24:27], "little") + 1
        h = int.from_bytes(data[27:30], "little") + 1
        return w, h
    return None


_SIZE_READERS = {"jpeg": _jpeg_size, "png": _png_size, "webp": _webp_size}


# Image formats people do upload that this server refuses, by magic bytes: named in the error.
_REFUSED_FORMATS = ((b"II*\x00", "TIFF"), (b"MM\x00*", "TIFF"), (b"BM", "BMP"), (b"GIF8", "GIF"))


def header_size(data: bytes) -> tuple[str, int, int]:
    """(format, width, height) read from the header only; raises ImageError."""
    fmt = sniff_format(data)
    if fmt is None:
        other = next((name for magic, name in _REFUSED_FORMATS if data.startswith(magic)), None)
        if other:
            raise ImageError(f"not an image this server takes: a {other} file; send a JPEG, PNG or WebP "
                             f"(fer-edge run --source FILE reads {other} files)")
        raise ImageError("not an image: expected a JPEG, PNG or WebP file")
    size = _SIZE_READERS[fmt](data)
    if size is None:
        raise ImageError(f"cannot read the {fmt.upper()} header: the file is truncated or corrupt")
    width, height = size
    if width <= 0 or height <= 0:
        raise ImageError(f"the {fmt.upper()} header says {width}x{height}: not a usable image")
    return fmt, width, height


def decode_image(data: bytes, max_pixels: int) -> np.ndarray:
    """Untrusted bytes -> (H, W, 3) uint8 BGR, or ImageError with a message for the client."""
    fmt, width, height = header_size(data)
    if width * height > max_pixels:
        raise ImageError(f"image is {width}x{height} = {width * height} pixels; "
                         f"this server accepts at most {max_pixels}")
    try:
        image_bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    except cv2.error:  # OpenCV's own size limit (OPENCV_IO_MAX_IMAGE_PIXELS) or a codec failure
        raise ImageError(f"the {fmt.upper()} data could not be decoded (corrupt, or over OpenCV's size limit)") from None
    if image_bgr is None or image_bgr.size == 0:
        raise ImageError(f"the {fmt.upper()} data could not be decoded: the file is truncated or corrupt")
    h, w = image_bgr.shape[:2]
    if h * w > max_pixels:  # the header lied (or EXIF rotation aside, a format quirk)
        raise ImageError(f"image decodes to {w}x{h} = {w * h} pixels; "
                         f"this server accepts at most {max_pixels}")
    return image_bgr

"""edge/web/decode.py: header sniffing, pixel caps before decoding, and refusals of bad bytes."""

from __future__ import annotations

import struct
import zlib

import cv2
import numpy as np
import pytest

from edge.web.decode import ImageError, decode_image, header_size, sniff_format

IMAGE = np.random.default_rng(0).integers(0, 255, (123, 321, 3), dtype=np.uint8)
CAP = 4096 * 4096


def _encode(ext: str, params=()) -> bytes:
    ok, buf = cv2.imencode(ext, IMAGE, list(params))
    assert ok
    return buf.tobytes()


ENCODINGS = {
    "jpeg": (".jpg", ()),
    "jpeg-progressive": (".jpg", (cv2.IMWRITE_JPEG_PROGRESSIVE, 1)),
    "png": (".png", ()),
    "webp-lossy": (".webp", (cv2.IMWRITE_WEBP_QUALITY, 80)),
    "webp-lossless": (".webp", (cv2.IMWRITE_WEBP_QUALITY, 101)),
}


@pytest.mark.parametrize("name", sorted(ENCODINGS))
def test_header_size_matches_the_decoded_image(name):
    data = _encode(*ENCODINGS[name])
    fmt, w, h = header_size(data)
    assert fmt == name.split("-")[0]
    assert (w, h) == (321, 123)
    image = decode_image(data, CAP)
    assert image.shape == (123, 321, 3) and image.dtype == np.uint8


def _sof_offset(jpeg: bytes) -> int:
    i = 2
    while True:
        marker = jpeg[i + 1]
        (length,) = struct.unpack(">H", jpeg[i + 2:i + 4])
        if marker in (0xC0, 0xC2):
            return i
        i += 2 + length


def _bomb(kind: str) -> bytes:
    """A small real file whose header claims a gigantic image (what a decompression bomb looks like)."""
    if kind == "png":
        data = bytearray(_encode(".png"))
        data[16:24] = struct.pack(">II", 30000, 30000)
        data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))  # a valid IHDR CRC
        return bytes(data)
    if kind == "jpeg":
        data = bytearray(_encode(".jpg"))
        i = _sof_offset(bytes(data))
        data[i + 5:i + 9] = struct.pack(">HH", 60000, 60000)
        return bytes(data)
    if kind == "webp-lossy":
        data = bytearray(_encode(".webp", (cv2.IMWRITE_WEBP_QUALITY, 80)))
        data[26:30] = struct.pack("<HH", 16383, 16383)
        return bytes(data)
    if kind == "webp-lossless":
        data = bytearray(_encode(".webp", (cv2.IMWRITE_WEBP_QUALITY, 101)))
        bits = (16383 - 1) | ((16383 - 1) << 14)
        data[21:25] = struct.pack("<I", bits)
        return bytes(data)
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["png", "jpeg", "webp-lossy", "webp-lossless"])
def test_decompression_bombs_are_refused_from_the_header(kind):
    data = _bomb(kind)
    assert len(data) < 200_000
    _, w, h = header_size(data)
    assert w * h > CAP
    with pytest.raises(ImageError, match="pixels; this server accepts at most"):
        decode_image(data, CAP)


def test_pixel_cap_applies_to_ordinary_images():
    data = _encode(".png")
    with pytest.raises(ImageError, match="accepts at most 1000"):
        decode_image(data, 1000)
    assert decode_image(data, 321 * 123).shape == (123, 321, 3)  # the cap itself is allowed


BAD = {
    "empty": b"",
    "text": b"hello, this is not an image\n",
    "html": b"<!doctype html><script>alert(1)</script>",
    "bmp": _encode(".bmp"),
    "gif-magic": b"GIF89a" + b"\x00" * 100,
    "jpeg-truncated": _encode(".jpg")[:400],
    "jpeg-magic-only": b"\xff\xd8\xff",
    "jpeg-garbage-after-magic": b"\xff\xd8\xff" + bytes(range(256)) * 4,
    "png-truncated": _encode(".png")[:100],
    "png-no-ihdr": b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\x0dJUNK" + b"\x00" * 30,
    "png-zero-size": b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR" + struct.pack(">II", 0, 10) + b"\x08\x02\x00\x00\x00",
    "webp-truncated": _encode(".webp", (cv2.IMWRITE_WEBP_QUALITY, 80))[:60],
    "riff-not-webp": b"RIFF\x00\x00\x00\x00WAVEfmt " + b"\x00" * 40,
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_bytes_raise_image_error(name):
    with pytest.raises(ImageError):
        decode_image(BAD[name], CAP)


@pytest.mark.parametrize("data, fmt", [(b"\xff\xd8\xff\xe0", "jpeg"), (b"\x89PNG\r\n\x1a\nxxxx", "png"),
                                       (b"RIFF\x10\x00\x00\x00WEBPVP8 ", "webp"), (b"GIF89a", None),
                                       (b"BM", None), (b"", None)])
def test_sniff_format(data, fmt):
    assert sniff_format(data) == fmt


@pytest.mark.parametrize("ext, name", [(".tiff", "TIFF"), (".bmp", "BMP")])
def test_formats_the_cli_reads_but_the_server_refuses_are_named(ext, name):
    with pytest.raises(ImageError, match=f"a {name} file; send a JPEG, PNG or WebP"):
        decode_image(_encode(ext), CAP)

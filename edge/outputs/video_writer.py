"""Writing annotated frames to a video file that a web browser plays.

OpenCV's writer in the pip wheels has no H.264 encoder (its `mp4v` is MPEG-4 Part 2, which
Chromium refuses), and its VP9 runs at libvpx's slowest setting with no way to ask for
real-time. PyAV (the `av` package) bundles FFmpeg with libx264 and libvpx in its wheels for
Linux x86-64 and aarch64 (the Pi), macOS and Windows, so every platform writes the same codecs:

    .mp4 .m4v .mov .mkv  H.264 (libx264, yuv420p; .mp4/.m4v/.mov with the index up front, so a
                         browser starts playing before the whole file has arrived)
    .webm                VP9 (libvpx-vp9 at its real-time setting)
    .avi                 Motion JPEG, as before: no browser plays AVI whatever its codec, and
                         OpenCV-era tools expect MJPG there (the run says so once)

The container the user named is always kept. `VideoFileWriter` opens on its first frame
(that frame's size); `write(image_bgr)` takes (H, W, 3) uint8 BGR frames of that size.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VideoCodec:
    """What FFmpeg writes into one container: its encoder, pixel format and encoder options."""

    encoder: str
    pix_fmt: str
    options: dict[str, str] = field(default_factory=dict)
    container_options: dict[str, str] = field(default_factory=dict)
    plays_in_browsers: bool = True


_H264 = VideoCodec("libx264", "yuv420p", {"preset": "veryfast", "crf": "23"})
_H264_FASTSTART = VideoCodec("libx264", "yuv420p", {"preset": "veryfast", "crf": "23"}, {"movflags": "+faststart"})
CODECS: dict[str, VideoCodec] = {
    ".mp4": _H264_FASTSTART,
    ".m4v": _H264_FASTSTART,
    ".mov": _H264_FASTSTART,
    ".mkv": _H264,
    ".webm": VideoCodec("libvpx-vp9", "yuv420p",
                        {"deadline": "realtime", "cpu-used": "8", "row-mt": "1", "crf": "32", "b": "0"}),
    ".avi": VideoCodec("mjpeg", "yuvj420p", {"q": "3"}, plays_in_browsers=False),
}
VIDEO_SUFFIXES = tuple(CODECS)


def codec_for(path: str | Path) -> VideoCodec:
    """The codec written for this file name; ValueError for a name without a video extension."""
    suffix = Path(path).suffix.lower()
    if suffix not in CODECS:
        raise ValueError(f"{path}: cannot write a video with this name; end it in {', '.join(VIDEO_SUFFIXES)}")
    return CODECS[suffix]


def _even(image_bgr: np.ndarray) -> np.ndarray:
    """The frame padded to even width and height (4:2:0 chroma needs both), edge pixels repeated."""
    h, w = image_bgr.shape[:2]
    if h % 2 == 0 and w % 2 == 0:
        return image_bgr
    return cv2.copyMakeBorder(image_bgr, 0, h % 2, 0, w % 2, cv2.BORDER_REPLICATE)


class VideoFileWriter:
    """One video file, written through PyAV. Raises OSError (the reason) when it cannot be written."""

    def __init__(self, path: str | Path, fps: float):
        self.path = Path(path)
        self.codec = codec_for(self.path)
        self.fps = float(fps)
        self._container = None
        self._stream = None
        self.frames = 0

    def _open(self, width: int, height: int) -> None:
        import av

        rate = Fraction(self.fps).limit_denominator(1001)
        try:
            container = av.open(str(self.path), mode="w", options=dict(self.codec.container_options))
        except av.error.FFmpegError as exc:
            raise _os_error(exc, self.path) from None
        try:
            stream = container.add_stream(self.codec.encoder, rate=rate, options=dict(self.codec.options))
            stream.width, stream.height, stream.pix_fmt = width, height, self.codec.pix_fmt
        except BaseException:
            container.close()
            raise
        self._container, self._stream = container, stream

    def write(self, image_bgr: np.ndarray) -> None:
        import av

        image_bgr = _even(image_bgr)
        if self._container is None:
            self._open(image_bgr.shape[1], image_bgr.shape[0])
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image_bgr), format="bgr24")
        frame.pts = self.frames
        try:
            for packet in self._stream.encode(frame):
                self._container.mux(packet)
        except av.error.FFmpegError as exc:
            raise _os_error(exc, self.path) from None
        self.frames += 1

    def close(self) -> None:
        """Flush the encoder and finish the file (an empty run leaves no file)."""
        import av

        container, self._container = self._container, None
        if container is None:
            return
        try:
            for packet in self._stream.encode(None):
                container.mux(packet)
        except av.error.FFmpegError as exc:
            raise _os_error(exc, self.path) from None
        finally:
            try:
                container.close()
            except av.error.FFmpegError as exc:
                raise _os_error(exc, self.path) from None

    def __enter__(self) -> "VideoFileWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _os_error(exc: Exception, path: Path) -> OSError:
    """An FFmpeg error as an OSError carrying the OS's reason where there is one (ENOSPC, EROFS, ...)."""
    errno_ = getattr(exc, "errno", None)
    reason = getattr(exc, "strerror", None) or str(exc)
    return OSError(errno_, reason, str(path))

"""Readers: one device each (OpenCV's VideoCapture, image files, picamera2), used only on the capture thread.

A reader's `read()` returns a Grab, None at the end of a file, and raises OSError when a device
fails; `video_frames` reads a file on the caller's thread (tools, benchmarks and tests).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Protocol

import cv2
import numpy as np

from edge.capture.source import SourceError, SourceSpec

log = logging.getLogger(__name__)



@dataclass(frozen=True, slots=True)
class Grab:
    image: np.ndarray | None  # (H, W, 3) uint8 BGR; None or empty: a corrupt frame, skipped
    t: float | None = None  # media time in seconds when the source knows it
    source: str = ""  # file path for image sources
    skipped: int = 0  # undecodable frames the reader passed over to reach this one


class Reader(Protocol):
    """A device. `read()` returns None at the end of a file and raises OSError when a device fails."""

    def read(self) -> Grab | None: ...

    def close(self) -> None: ...


class CvReader:
    """cv2.VideoCapture over a camera index, a URL or a video file."""

    def __init__(self, target: str, live: bool, width: int | None = None, height: int | None = None,
                 fps: float | None = None):
        self.live = live
        self._target = target
        self._index = int(target) if target.isdigit() else None
        self._cap = cv2.VideoCapture(self._index if self._index is not None else target)
        if not self._cap.isOpened():
            self._cap.release()
            if self._index is not None:
                raise OSError(f"cannot open camera {target}")
            if live:
                raise OSError(f"cannot open stream {target}")
            raise OSError(f"cannot open {target} as a video (not a video file OpenCV can decode, or one cut "
                          "short: an MP4 whose recording was interrupted has no index to play it by)")
        if self._index is not None:
            if width:
                self._cap.set(cv2.CAP_PROP_FRAME_WIDTH, width)
            if height:
                self._cap.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
            if fps:
                self._cap.set(cv2.CAP_PROP_FPS, fps)
        media_fps = self._cap.get(cv2.CAP_PROP_FPS)
        self.fps = float(media_fps) if media_fps and media_fps > 0 and media_fps < 1000 else None
        self._n = 0

    def read(self) -> Grab | None:
        ok, image = self._cap.read()
        if not ok and self.live:
            raise OSError("the camera or stream stopped delivering frames")
        # A file: a failed read is the end, unless frames follow it (a corrupt frame in the
        # middle). Failures are counted as skipped only once a later frame decodes, so a
        # container that over-states its frame count does not report phantom skips.
        failed = 0
        while not ok:
            failed += 1
            if failed > self.MAX_BAD_FRAMES or not self._more_frames():
                self._check_complete()
                return None
            ok, image = self._cap.read()
        self._n += 1 + failed
        t = (self._n - 1) / self.fps if (self.fps and not self.live) else None
        return Grab(image, t, skipped=failed)

    MAX_BAD_FRAMES = 25  # consecutive undecodable frames before a file counts as ended

    def _check_complete(self) -> None:
        """At a file's end: warn when it ended well before the frame count its header announces
        (a copy cut short, a recording interrupted). A frame or two, or 2 %, is the slack of
        containers whose count is estimated from their duration."""
        if self.live:
            return
        announced = self.frame_count
        if announced and self._n < announced - max(2, 0.02 * announced):
            log.warning("%s: the video ended at frame %d of the %d its header announces: the file is cut short "
                        "or damaged, and the run covers the frames before that", self._target, self._n, announced)

    @property
    def frame_count(self) -> int:
        """The frame count a file's container states (0 when it does not say)."""
        return max(int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT)), 0)

    def _more_frames(self) -> bool:
        count = self._cap.get(cv2.CAP_PROP_FRAME_COUNT)
        return count > 0 and self._cap.get(cv2.CAP_PROP_POS_FRAMES) < count

    def close(self) -> None:
        self._cap.release()


class ImageReader:
    """Image files one after another; an unreadable file is a corrupt frame (skipped)."""

    live = False
    fps = None

    def __init__(self, paths: tuple[str, ...]):
        self._paths = iter(paths)

    def read(self) -> Grab | None:
        path = next(self._paths, None)
        if path is None:
            return None
        image = cv2.imread(path, cv2.IMREAD_COLOR)
        if image is None:
            log.warning("%s: not a readable image, skipped", path)
        return Grab(image, None, path)

    def close(self) -> None:
        pass


class Picamera2Reader:
    """The Raspberry Pi camera through picamera2 (imported only when asked for)."""

    live = True
    fps = None

    def __init__(self, width: int | None = None, height: int | None = None, fps: float | None = None):
        try:
            from picamera2 import Picamera2
        except ImportError:
            raise SourceError(
                "--source picamera2 needs the picamera2 module: `sudo apt install python3-picamera2` "
                "and create the virtualenv with --system-site-packages"
            ) from None
        try:
            self._cam = Picamera2()
        except (RuntimeError, IndexError) as exc:  # no camera attached
            raise OSError(f"picamera2: no camera ({exc})") from None
        main = {"size": (int(width or 640), int(height or 480)), "format": "RGB888"}  # RGB888 is B,G,R in memory
        controls = {"FrameRate": float(fps)} if fps else {}
        try:
            self._cam.configure(self._cam.create_video_configuration(main=main, controls=controls))
            self._cam.start()
        except Exception:
            self._cam.close()
            raise

    def read(self) -> Grab | None:
        try:
            image = self._cam.capture_array("main")
        except RuntimeError as exc:
            raise OSError(f"picamera2: {exc}") from None
        if image is not None and image.ndim == 3 and image.shape[2] == 4:
            image = image[:, :, :3]  # XRGB8888 is B,G,R,A
        return Grab(image)

    def close(self) -> None:
        try:
            self._cam.stop()
        finally:
            self._cam.close()


def video_frames(path: str | Path) -> Iterator[np.ndarray]:
    """Every frame of a video file in order, (H, W, 3) uint8 BGR, read synchronously on the
    caller's thread (tools, benchmarks and tests; a frame loop uses Capture). OSError when
    OpenCV cannot open it."""
    reader = CvReader(str(path), live=False)
    try:
        while (grab := reader.read()) is not None:
            yield grab.image
    finally:
        reader.close()


def read_video_frames(path: str | Path) -> list[np.ndarray]:
    """All frames of a (short) video file: `list(video_frames(path))`."""
    return list(video_frames(path))


def reader_factory(spec: SourceSpec, width: int | None = None, height: int | None = None,
                   fps: float | None = None) -> Callable[[], Reader]:
    """A function that opens the spec's device (called on the capture thread, again on reconnect)."""
    if spec.kind == "picamera2":
        return lambda: Picamera2Reader(width, height, fps)
    if spec.images:
        return lambda: ImageReader(spec.paths)
    return lambda: CvReader(spec.target, spec.live, width, height, fps)

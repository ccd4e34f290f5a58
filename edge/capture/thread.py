"""Frame sources on their own thread: cameras, streams, video files, images, folders, picamera2.

The capture thread owns the device. Live sources (camera, URL, picamera2, or a file with
`realtime=True`) keep only the newest frame in a one-slot box: a frame that is overwritten
before the consumer took it is counted as a drop, and `read(after=...)` never returns a frame
twice. File sources deliver every frame through a small bounded queue. Cameras and streams
reconnect with exponential backoff. Corrupt or empty frames are skipped and counted. A
capture error is re-raised in the consumer's `read`.
"""

from __future__ import annotations

import glob
import logging
import os
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Protocol

import cv2
import numpy as np

from edge.types import Frame

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".pgm", ".ppm")
URL_SCHEMES = ("rtsp://", "rtsps://", "http://", "https://", "rtmp://", "udp://", "tcp://")


class SourceError(RuntimeError):
    """A source that cannot be opened or read; the message says what to do."""


class EndOfStream(Exception):
    """The source is exhausted and every frame has been delivered."""


# ---------------------------------------------------------------------------------------------
# Source specs: what the user asked for


@dataclass(frozen=True, slots=True)
class SourceSpec:
    kind: str  # camera | video | image | folder | url | picamera2
    target: str  # camera index as text, path, glob or URL
    paths: tuple[str, ...] = ()  # image files, for image/folder

    @property
    def live(self) -> bool:
        return self.kind in ("camera", "url", "picamera2")

    @property
    def images(self) -> bool:
        return self.kind in ("image", "folder")


def parse_source(text: str) -> SourceSpec:
    """`0`, `picamera2`, `rtsp://...`, `video.mp4`, `face.jpg`, `folder/`, `'frames/*.png'`."""
    text = str(text).strip()
    if text.isdigit():
        return SourceSpec("camera", text)
    if text == "picamera2":
        return SourceSpec("picamera2", text)
    if text.lower().startswith(URL_SCHEMES):
        return SourceSpec("url", text)
    p = Path(text).expanduser()
    if p.is_dir():
        paths = sorted(str(q) for q in p.iterdir() if q.suffix.lower() in IMAGE_SUFFIXES and q.is_file())
        if not paths:
            nested = _first_nested_image(p)
            if nested is not None:
                # Not walked: a folder tree can hold far more than the user meant to process.
                raise SourceError(f"{text}: no images at the top of this folder, only in its sub-folders; "
                                  f"pass a quoted glob to take them, e.g. --source '{p / '**' / ('*' + nested.suffix)}' "
                                  f"(or '{p / '**' / '*'}' for images of every type)")
            raise SourceError(f"{text}: folder has no images ({', '.join(IMAGE_SUFFIXES)})")
        return SourceSpec("folder", text, tuple(paths))
    if any(c in text for c in "*?["):
        paths = sorted(q for q in glob.glob(os.path.expanduser(text), recursive=True)
                       if Path(q).suffix.lower() in IMAGE_SUFFIXES)
        if not paths:
            raise SourceError(f"{text}: the glob matches no images")
        return SourceSpec("folder", text, tuple(paths))
    if p.is_file():
        if not os.access(p, os.R_OK):
            raise SourceError(f"{text}: file is not readable (permissions)")
        if p.suffix.lower() in IMAGE_SUFFIXES:
            return SourceSpec("image", text, (str(p),))
        return SourceSpec("video", text)
    raise SourceError(
        f"file not found: {text} (--source takes a camera index, a video or image file, a folder, "
        "a quoted glob of images, an rtsp/http URL or picamera2)"
    )


def _first_nested_image(folder: Path) -> Path | None:
    """An image in some sub-folder (at any depth), the first one found; None when there is none."""
    return next((q for q in folder.rglob("*") if q.suffix.lower() in IMAGE_SUFFIXES and q.is_file()), None)


# ---------------------------------------------------------------------------------------------
# Readers: one device each, used only on the capture thread


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


# ---------------------------------------------------------------------------------------------
# Hand-over between the capture thread and the consumer


class LatestFrameBox:
    """One slot holding the newest frame; overwriting an untaken frame counts as a drop."""

    def __init__(self):
        self._cond = threading.Condition()
        self._frame: Frame | None = None
        self._taken = True
        self._closed = False
        self.drops = 0

    def put(self, frame: Frame) -> None:
        with self._cond:
            if not self._taken:
                self.drops += 1
            self._frame, self._taken = frame, False
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def get(self, after: int, timeout_s: float) -> Frame | None:
        """The newest frame with index > after; None on timeout; EndOfStream once closed and drained."""
        with self._cond:
            fresh = lambda: self._frame is not None and self._frame.index > after  # noqa: E731
            self._cond.wait_for(lambda: fresh() or self._closed, timeout_s)
            if fresh():
                self._taken = True
                return self._frame
            if self._closed:
                raise EndOfStream
            return None


_END = object()


def backoff_delay(failures: int, base_s: float, cap_s: float) -> float:
    """Seconds to wait after the n-th failure in a row: base, 2 base, 4 base, ... at most cap."""
    return min(cap_s, base_s * 2 ** max(0, failures - 1))


@dataclass(frozen=True, slots=True)
class CaptureStats:
    frames: int  # frames handed to the box/queue
    drops: int  # live frames overwritten before the consumer took them
    skipped: int  # corrupt or empty frames
    reconnects: int  # failed opens/reads retried after a backoff


class Capture:
    """`with Capture(open_reader, live=...) as cap: frame = cap.read(after=last.index)`.

    open_reader: called on the capture thread to open the device (again after a failure when
    `reconnect`). open_retries: failed opens tolerated before the first success (0: fail at
    once, as for a missing camera); after that, failures are retried with backoff, at most
    `max_retries` in a row (None: for ever). pace_fps / pace_media: deliver at this rate / at
    the file's own rate (realtime playback of a file).
    """

    def __init__(self, open_reader: Callable[[], Reader], *, live: bool, name: str = "source",
                 reconnect: bool | None = None, queue_size: int = 4, open_retries: int = 0,
                 max_retries: int | None = None, backoff_s: float = 0.25, backoff_max_s: float = 8.0,
                 pace_fps: float | None = None, pace_media: bool = False, join_timeout_s: float = 2.0):
        self.name = name
        self.live = live
        self._open_reader = open_reader
        self._reconnect = live if reconnect is None else reconnect
        self._open_retries = open_retries
        self._max_retries = max_retries
        self._backoff_s, self._backoff_max_s = backoff_s, backoff_max_s
        self._pace_fps = pace_fps
        self._pace_media = pace_media  # realtime file playback at the file's own frame rate
        self._join_timeout_s = join_timeout_s
        self._stop = threading.Event()
        self._box = LatestFrameBox() if live else None
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, queue_size))
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=f"capture-{name}", daemon=True)
        self._frames = self._skipped = self._reconnects = 0
        self._ended = False
        self.media_fps: float | None = None  # the source's own frame rate once open, when it has one

    @classmethod
    def from_spec(cls, spec: SourceSpec, *, width: int | None = None, height: int | None = None,
                  fps: float | None = None, realtime: bool = False, **kwargs) -> "Capture":
        """The usual capture for a parsed --source."""
        live = spec.live or realtime
        kwargs.setdefault("open_retries", 3 if spec.kind == "url" else 0)
        return cls(reader_factory(spec, width, height, fps), live=live, name=spec.kind, reconnect=spec.live,
                   pace_media=realtime and not spec.live, **kwargs)

    # --- consumer side ---------------------------------------------------------------------

    def start(self) -> "Capture":
        self._thread.start()
        return self

    def __enter__(self) -> "Capture":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    def read(self, after: int = -1, timeout_s: float = 1.0) -> Frame | None:
        """The next frame (live: the newest with index > after); None on timeout.

        Raises EndOfStream when the source is exhausted, or the capture thread's error.
        """
        if self._ended:
            self._raise_end()
        if self._box is not None:
            try:
                return self._box.get(after, timeout_s)
            except EndOfStream:
                self._ended = True
                self._raise_end()
        try:
            item = self._queue.get(timeout=timeout_s)
        except queue.Empty:
            return None
        if item is _END:
            self._ended = True
            self._raise_end()
        return item

    def frames(self, stop: threading.Event | None = None, poll_s: float = 0.1) -> Iterator[Frame]:
        """Every frame the consumer can take, until the end of the source or `stop` is set."""
        last = -1
        while not (stop is not None and stop.is_set()):
            try:
                frame = self.read(after=last, timeout_s=poll_s)
            except EndOfStream:
                return
            if frame is not None:
                last = frame.index
                yield frame

    def _raise_end(self):
        if self._error is not None:
            raise self._error
        raise EndOfStream

    @property
    def stats(self) -> CaptureStats:
        return CaptureStats(frames=self._frames, drops=self._box.drops if self._box else 0,
                            skipped=self._skipped, reconnects=self._reconnects)

    def stop(self) -> None:
        self._stop.set()

    def close(self) -> float:
        """Stop the thread and join it; returns the join time in seconds."""
        self._stop.set()
        t0 = time.perf_counter()
        if self._thread.is_alive():
            self._thread.join(self._join_timeout_s)
            if self._thread.is_alive():
                log.warning("capture thread %s did not stop within %.1f s", self.name, self._join_timeout_s)
        return time.perf_counter() - t0

    # --- capture thread --------------------------------------------------------------------

    def _run(self) -> None:
        reader: Reader | None = None
        index = 0
        ever_opened = False
        failures = 0
        pace_fps = None
        t0 = time.monotonic()
        try:
            while not self._stop.is_set():
                if reader is None:
                    try:
                        reader = self._open_reader()
                    except OSError as exc:
                        failures += 1
                        limit = self._max_retries if ever_opened else self._open_retries
                        if not self._reconnect or (limit is not None and failures > limit):
                            tries = f" ({failures} attempts)" if failures > 1 else ""
                            raise SourceError(f"{self.name}: {exc}{tries}") from None
                        self._backoff(failures, exc)
                        continue
                    ever_opened = True
                    self.media_fps = getattr(reader, "fps", None)
                    pace_fps = self._pace_fps or (getattr(reader, "fps", None) if self._pace_media else None)
                try:
                    grab = reader.read()
                except OSError as exc:
                    self._close_reader(reader)
                    reader = None
                    if not self._reconnect:
                        raise SourceError(f"{self.name}: {exc}") from None
                    failures += 1
                    if self._max_retries is not None and failures > self._max_retries:
                        raise SourceError(f"{self.name}: gave up after {failures} failures: {exc}") from None
                    self._backoff(failures, exc)
                    continue
                if grab is None:
                    break
                failures = 0
                self._skipped += grab.skipped
                image = grab.image
                if image is None or image.size == 0 or image.ndim not in (2, 3):
                    self._skipped += 1
                    continue
                if image.ndim == 2:
                    image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
                if self.live and grab.t is None:
                    t = time.monotonic() - t0
                else:
                    t = grab.t if grab.t is not None else float(index)
                frame = Frame(image=image, index=index, t=t, source=grab.source)
                index += 1
                if pace_fps:
                    # Realtime playback of a file: wait for the frame's time on the wall clock.
                    wait = t0 + frame.index / pace_fps - time.monotonic()
                    if wait > 0 and self._stop.wait(wait):
                        break
                if not self._deliver(frame):
                    break
        except BaseException as exc:  # handed to the consumer, which re-raises it
            self._error = exc
            log.debug("capture %s failed: %r", self.name, exc)
        finally:
            if reader is not None:
                self._close_reader(reader)
            self._finish()

    def _backoff(self, failures: int, exc: BaseException) -> None:
        self._reconnects += 1
        delay = backoff_delay(failures, self._backoff_s, self._backoff_max_s)
        log.warning("%s: %s; retrying in %.2f s", self.name, exc, delay)
        self._stop.wait(delay)

    def _close_reader(self, reader: Reader) -> None:
        try:
            reader.close()
        except Exception as exc:  # a failing release must not hide the real error
            log.warning("%s: release failed: %s", self.name, exc)

    def _deliver(self, frame: Frame) -> bool:
        """False when stopped while waiting for room."""
        if self._box is not None:
            self._box.put(frame)
            self._frames += 1  # after the put: `frames - 1` is always in the box or taken
            return True
        while not self._stop.is_set():
            try:
                self._queue.put(frame, timeout=0.1)
                self._frames += 1
                return True
            except queue.Full:
                continue
        return False

    def _finish(self) -> None:
        if self._box is not None:
            self._box.close()
            return
        # The consumer may have stopped reading; never block the thread's exit on a full queue.
        while True:
            try:
                self._queue.put(_END, timeout=0.1)
                return
            except queue.Full:
                if self._stop.is_set():
                    try:
                        self._queue.get_nowait()  # make room: the consumer is gone
                    except queue.Empty:
                        pass

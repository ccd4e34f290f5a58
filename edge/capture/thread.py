"""`Capture`: a frame source (edge.capture.readers) on its own thread, handing frames to the consumer.

The capture thread owns the device. Live sources (camera, URL, picamera2, or a file with
`realtime=True`) keep only the newest frame in a one-slot box: a frame that is overwritten
before the consumer took it is counted as a drop, and `read(after=...)` never returns a frame
twice. File sources deliver every frame through a small bounded queue. Cameras and streams
reconnect with exponential backoff. Corrupt or empty frames are skipped and counted. A
capture error is re-raised in the consumer's `read`.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterator

import cv2

from edge.capture.readers import Reader, reader_factory
from edge.capture.source import SourceError, SourceSpec
from edge.types import Frame

log = logging.getLogger(__name__)


class EndOfStream(Exception):
    """The source is exhausted and every frame has been delivered."""



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

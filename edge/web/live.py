"""The live source behind the web UI: one background thread, one JPEG per frame, many viewers.

The thread reads the newest frame from the capture, runs the live pipeline (tracking and
smoothing on), draws the overlay and encodes ONE JPEG. MJPEG clients and the polling API only
read that latest result, so a slow or vanished viewer never slows the pipeline and the encode
cost does not grow with the number of viewers.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Callable, Iterator

import cv2
import numpy as np

from edge.loop import FrameLoop
from edge.types import Frame, FrameResult
from edge.web.shares import LabelShares

if TYPE_CHECKING:
    from edge.pipeline import Pipeline

log = logging.getLogger(__name__)

# Source states shown by /api/stats and the live page.
STARTING, RUNNING, ENDED, FAILED, STOPPED = "starting", "running", "ended", "failed", "stopped"
WAITING = "waiting"  # a file source, until its first viewer
TERMINAL = frozenset({ENDED, FAILED, STOPPED})


@dataclass(frozen=True, slots=True)
class LiveFrame:
    seq: int  # strictly increasing per encoded frame
    jpeg: bytes  # the annotated frame, encoded once for every viewer; b"" while nobody watches
    width: int
    height: int
    faces: list = field(default_factory=list)  # API face records (see edge.web.app.face_records)
    latency_ms: float = 0.0  # pipeline + draw + encode time of this frame
    t: float = 0.0  # time.monotonic() when it was published


class TooManyClients(RuntimeError):
    """More MJPEG viewers than the server keeps threads for."""


class LiveStream:
    """`with LiveStream(open_capture, pipeline, draw, to_records) as live: live.wait_newer(seq)`.

    open_capture: () -> an entered-able edge.capture.thread.Capture (opened on the live thread).
    pipeline: the live edge.pipeline.Pipeline (only this thread, and its detection thread, use
    it), run by the frame loop (edge.loop.FrameLoop) with `workers`, `fresh` and `max_fps`.
    draw: (image_bgr, FrameResult, fps or None) -> annotated image_bgr.
    to_records: FrameResult -> list of API face records.
    on_result: optional FrameResult -> None, called on the live thread for every processed frame
    (the /metrics counters).
    wait_for_viewer: open the source only once the first MJPEG viewer connects (a file: it
    plays for someone, instead of running out before anyone opens the Live page).
    """

    def __init__(self, open_capture: Callable[[], object], pipeline: Pipeline,
                 draw: Callable[[np.ndarray, FrameResult, float | None], np.ndarray],
                 to_records: Callable[[FrameResult], list], *, source_name: str = "",
                 jpeg_quality: int = 80, max_clients: int = 4, max_fps: float = 0.0,
                 join_timeout_s: float = 5.0, workers: int | None = None,
                 fresh: Callable[[Frame], bool] | None = None,
                 on_result: Callable[[FrameResult], None] | None = None, wait_for_viewer: bool = False):
        self.source_name = source_name
        self.wait_for_viewer = wait_for_viewer
        self._open_capture = open_capture
        self._pipeline = pipeline
        self._workers, self._fresh, self._max_fps = workers, fresh, max_fps
        self._draw = draw
        self._to_records = to_records
        self._on_result = on_result
        self._jpeg_params = [int(cv2.IMWRITE_JPEG_QUALITY), int(jpeg_quality)]
        self.max_clients = max_clients
        self._join_timeout_s = join_timeout_s
        self._stop = threading.Event()
        self._cond = threading.Condition()
        self._latest: LiveFrame | None = None
        self._state = STARTING
        self._error = ""
        self._clients = 0
        self._clients_total = 0
        self._frames = 0
        self._capture_stats = None
        self._publish_times: deque[float] = deque(maxlen=30)
        self._shares = LabelShares(window_s=60.0)  # the live page's rolling chart
        self._unencoded: tuple | None = None  # (image, result, fps) of the latest frame published without a JPEG
        self._thread = threading.Thread(target=self._run, name="web-live", daemon=True)

    # --- lifecycle ----------------------------------------------------------------------------

    def start(self) -> "LiveStream":
        self._thread.start()
        return self

    def __enter__(self) -> "LiveStream":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def close(self) -> None:
        """Stop the live thread and join it; wakes every waiting viewer."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(self._join_timeout_s)
            if self._thread.is_alive():
                log.warning("live thread did not stop within %.1f s", self._join_timeout_s)

    # --- the live thread ------------------------------------------------------------------------

    def _set_state(self, state: str, error: str = "") -> None:
        with self._cond:
            self._state, self._error = state, error
            self._cond.notify_all()

    def _run(self) -> None:
        final, error = ENDED, ""
        if self.wait_for_viewer:
            with self._cond:
                self._state = WAITING
                self._cond.wait_for(lambda: self._clients > 0 or self._stop.is_set())
                if self._stop.is_set():
                    self._state = STOPPED
                    self._cond.notify_all()
                    return
                self._state = STARTING
        try:
            with self._open_capture() as capture:
                self._set_state(RUNNING)
                try:
                    # A cap on processed frames/s leaves CPU for API requests (a Pi); live sources drop the rest.
                    with FrameLoop(self._pipeline, capture, self._stop, max_fps=self._max_fps, fresh=self._fresh,
                                   workers=self._workers) as loop:
                        loop.run(lambda result: self._publish(result, capture))
                finally:
                    self._capture_stats = capture.stats
            self._encode_unwatched_last()  # a viewer who joins after the end still sees the last frame
            if self._stop.is_set():
                final = STOPPED
        except Exception as exc:  # a source that cannot be opened or dies: shown, not fatal
            log.warning("live source %s failed: %s", self.source_name, exc)
            final, error = FAILED, str(exc) or type(exc).__name__
        self._set_state(final, error)

    def _encode(self, image: np.ndarray, result: FrameResult, fps: float) -> bytes | None:
        annotated = self._draw(image, result, fps if fps > 0 else None)
        ok, buf = cv2.imencode(".jpg", annotated, self._jpeg_params)
        return buf.tobytes() if ok else None

    def _publish(self, result: FrameResult, capture) -> None:
        t0 = time.perf_counter()
        self._capture_stats = capture.stats
        frame = result.frame
        fps = self.fps()
        with self._cond:
            watched = self._clients > 0
        # Drawing and JPEG encoding cost more than the pipeline on a large frame: only for viewers.
        jpeg = b""
        if watched:
            jpeg = self._encode(frame.image, result, fps)
            if jpeg is None:
                log.warning("live frame %d: JPEG encode failed, skipped", frame.index)
                return
        self._unencoded = None if watched else (frame.image, result, fps)
        h, w = frame.image.shape[:2]
        now = time.monotonic()
        self._shares.add(now, result.label_index, len(result.labels))
        if self._on_result is not None:
            self._on_result(result)
        with self._cond:
            seq = self._latest.seq + 1 if self._latest is not None else 0
            self._latest = LiveFrame(seq=seq, jpeg=jpeg, width=w, height=h,
                                     faces=self._to_records(result),
                                     latency_ms=result.timings.total_ms + (time.perf_counter() - t0) * 1e3,
                                     t=now)
            self._frames += 1
            self._publish_times.append(now)
            self._cond.notify_all()

    def _encode_unwatched_last(self) -> None:
        pending, self._unencoded = self._unencoded, None
        if pending is None:
            return
        jpeg = self._encode(*pending)
        if jpeg is None:
            return
        with self._cond:
            if self._latest is not None and not self._latest.jpeg:
                self._latest = replace(self._latest, jpeg=jpeg)
                self._cond.notify_all()

    # --- viewers ------------------------------------------------------------------------------

    def latest(self) -> LiveFrame | None:
        with self._cond:
            return self._latest

    def wait_newer(self, seq: int, timeout_s: float) -> LiveFrame | None:
        """The latest frame if its seq > `seq`, waiting up to timeout_s; else None."""
        with self._cond:
            fresh = lambda: self._latest is not None and self._latest.seq > seq  # noqa: E731
            self._cond.wait_for(lambda: fresh() or self._stop.is_set() or self._state in TERMINAL,
                                timeout_s)
            return self._latest if fresh() else None

    @property
    def finished(self) -> bool:
        """The source ended, failed or the server is stopping: no new frames will come."""
        with self._cond:
            return self._stop.is_set() or self._state in TERMINAL

    @contextmanager
    def client(self) -> Iterator[None]:
        """Count one MJPEG viewer for as long as its response streams."""
        with self._cond:
            if self._clients >= self.max_clients:
                raise TooManyClients(f"{self._clients} viewers already watch the stream "
                                     f"(limit {self.max_clients}); close one or raise --threads")
            self._clients += 1
            self._clients_total += 1
            self._cond.notify_all()  # a source waiting for its first viewer starts now
        try:
            yield
        finally:
            with self._cond:
                self._clients -= 1

    def mjpeg(self, boundary: bytes, keepalive_s: float = 1.0) -> Iterator[bytes]:
        """multipart/x-mixed-replace parts until the source finishes or the server stops.

        The caller holds `client()` around this. A viewer that joins after the end still gets
        the last frame once, so the page shows where the source stopped.
        """
        seq = -1
        while not self._stop.is_set():
            frame = self.wait_newer(seq, keepalive_s)
            if frame is None:
                if self.finished:
                    return
                continue
            seq = frame.seq
            if not frame.jpeg:  # published before this viewer came; the next one is encoded
                continue
            yield (b"--" + boundary + b"\r\nContent-Type: image/jpeg\r\nContent-Length: "
                   + str(len(frame.jpeg)).encode() + b"\r\n\r\n" + frame.jpeg + b"\r\n")

    @property
    def capture_stats(self):
        """The capture's counters (edge.capture.thread.CaptureStats) as of the latest frame; None before the first."""
        return self._capture_stats

    def shares(self) -> dict:
        """Faces per label per second over the last minute (edge.web.shares.LabelShares.snapshot)."""
        return self._shares.snapshot(time.monotonic())

    def fps(self) -> float:
        """Published frames per second over the last ~30 frames (0 when idle for 2 s)."""
        with self._cond:
            times = list(self._publish_times)
        if len(times) < 2 or time.monotonic() - times[-1] > 2.0:
            return 0.0
        return (len(times) - 1) / max(times[-1] - times[0], 1e-6)

    def stats(self) -> dict:
        with self._cond:
            latest, state, error = self._latest, self._state, self._error
            clients, clients_total, frames = self._clients, self._clients_total, self._frames
        cap = self._capture_stats
        return {
            "source": self.source_name,
            "state": state,
            "error": error,
            "frames": frames,
            "captured": cap.frames if cap else 0,
            "drops": cap.drops if cap else 0,
            "skipped": cap.skipped if cap else 0,
            "reconnects": cap.reconnects if cap else 0,
            "fps": round(self.fps(), 2),
            "clients": clients,
            "clients_total": clients_total,
            "max_clients": self.max_clients,
            "latency_ms": round(latest.latency_ms, 2) if latest else None,
            "width": latest.width if latest else None,
            "height": latest.height if latest else None,
        }

"""The frame loop of `fer-edge run` and of the web's live stream, and the run summary it keeps.

    with FrameLoop(pipeline, capture, stop, max_fps=10.0) as loop:
        loop.run(on_result, on_idle)
    print(loop.summary.text())

`run` takes each processed frame from the pipeline's stages (edge.pipeline.stages: every
stage on this thread, or detection one frame ahead on a second one), counts it in the
RunSummary, hands it to `on_result` (the sinks, the window, the live page) and keeps to
max_fps. `on_idle` is called while no frame is ready (a stalled camera, a window's keys).
Either returning True ends the loop, as do the end of the source and the stop Event. The
source's error (edge.capture.source.SourceError) is raised to the caller. Leaving the context closes
the stages and fills in the summary's wall time and the capture's counters.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import numpy as np

from edge.types import Frame, FrameResult

if TYPE_CHECKING:
    from edge.capture.thread import Capture
    from edge.pipeline import Pipeline

STAGES = ("detect", "preprocess", "classify", "track", "total")


class FrameLoop:
    """Frames from a capture through a pipeline into a callback, at most max_fps of them.

    pipeline: an open edge.pipeline.Pipeline; capture: an entered edge.capture.thread.Capture (or any
    source with its `read(after, timeout_s)` and `stats`). fresh(frame) -> True: the frame
    starts an unrelated stream (a still), so detector memory and tracks are reset for it.
    workers: 1 or 2 (None: the pipeline's own setting). summary: the RunSummary to fill.
    """

    def __init__(self, pipeline: Pipeline, capture: Capture, stop: threading.Event, *, max_fps: float = 0.0,
                 fresh: Callable[[Frame], bool] | None = None, workers: int | None = None,
                 summary: RunSummary | None = None):
        if max_fps < 0:
            raise ValueError(f"max_fps must be >= 0, not {max_fps}")
        self.pipeline, self.capture, self.stop = pipeline, capture, stop
        self.fresh, self.workers = fresh, workers
        self.summary = summary if summary is not None else RunSummary()
        # A cap on processed frames/s leaves CPU to other work (a Pi, the web's requests); a
        # live source drops the frames in between, a file waits.
        self._min_dt_s = 1.0 / max_fps if max_fps > 0 else 0.0
        self._stages = None
        self._t_start: float | None = None

    def __enter__(self) -> "FrameLoop":
        from edge.pipeline import stages

        self._stages = stages(self.pipeline, self.capture, self.workers, fresh=self.fresh).__enter__()
        self._t_start = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Stop the stages (and their detection thread); the summary takes the wall time and the
        capture's counters."""
        stages, self._stages = self._stages, None
        if stages is None:
            return
        stages.__exit__(None, None, None)
        self.summary.wall_s = time.perf_counter() - self._t_start
        cs = self.capture.stats
        self.summary.drops, self.summary.skipped, self.summary.reconnects = cs.drops, cs.skipped, cs.reconnects

    def run(self, on_result: Callable[[FrameResult], bool | None],
            on_idle: Callable[[], bool | None] | None = None) -> None:
        """Frames until the source ends, the stop Event is set or a callback returns True.

        Raises edge.capture.source.SourceError when the source fails."""
        from edge.capture.thread import EndOfStream

        if self._stages is None:
            raise RuntimeError("FrameLoop.run needs the loop entered: `with FrameLoop(...) as loop`")
        # max_fps spaces the moments the loop asks for a frame, so a frame's own processing counts
        # towards its interval, whether it ran here or (detection) ahead on another thread.
        t_ask = time.perf_counter()
        while not self.stop.is_set():
            try:
                result = self._stages.next()
            except EndOfStream:
                return
            if result is None:
                if on_idle is not None and on_idle():
                    return
                continue
            self.summary.add(result)
            if on_result(result) or self._wait_until(t_ask + self._min_dt_s):
                return
            t_ask = time.perf_counter()

    def _wait_until(self, t: float) -> bool:
        """Wait until perf_counter() reaches t; True when the stop Event was set meanwhile."""
        wait_s = t - time.perf_counter()
        return wait_s > 0 and self.stop.wait(wait_s)


@dataclass
class RunSummary:
    """Counts and per-stage latencies of a run; `text()` is what the CLI prints at exit.

    Latencies are kept for the last `window` frames only, in one preallocated array, so a run
    of a week holds as much as a run of a minute; the percentiles describe that window (the
    text says so once the run is longer). The counts cover the whole run.
    """

    frames: int = 0
    faces: int = 0
    drops: int = 0
    skipped: int = 0
    reconnects: int = 0
    wall_s: float = 0.0
    window: int = 10_000
    unit: str = "frames"  # "images" for photo runs
    show_rate: bool = True  # False where a person sets the pace (photos stepped through by key)

    def __post_init__(self):
        if self.window < 1:
            raise ValueError(f"window must be >= 1 frame, not {self.window}")
        # Filled now, so that its pages are resident from the start and never show up as growth.
        self._ms = np.full((len(STAGES), self.window), np.nan, np.float32)

    def add(self, result: FrameResult) -> None:
        t = result.timings
        self._ms[:, self.frames % self.window] = (t.detect_ms, t.preprocess_ms, t.classify_ms, t.track_ms,
                                                  t.total_ms)
        self.frames += 1
        self.faces += len(result.faces)

    @property
    def window_frames(self) -> int:
        """How many frames the percentiles cover: the last min(frames, window)."""
        return min(self.frames, self.window)

    def percentiles(self, q: float) -> dict[str, float]:
        """Per stage, the q-th percentile in ms over the window (NaN when no frames)."""
        n = self.window_frames
        if not n:
            return {s: float("nan") for s in STAGES}
        values = np.percentile(self._ms[:, :n].astype(np.float64), q, axis=1)
        return {s: float(v) for s, v in zip(STAGES, values)}

    @property
    def fps(self) -> float:
        return self.frames / self.wall_s if self.wall_s > 0 else 0.0

    def to_json(self) -> dict:
        return {"frames": self.frames, "faces": self.faces, "drops": self.drops, "skipped": self.skipped,
                "reconnects": self.reconnects, "wall_s": round(self.wall_s, 3), "fps": round(self.fps, 2),
                "latency_ms": {"p50": self.percentiles(50), "p95": self.percentiles(95)},
                "latency_frames": self.window_frames}

    def text(self) -> str:
        pace = (f"{self.fps:.1f} {self.unit}/s over {self.wall_s:.1f} s" if self.show_rate
                else f"shown for {self.wall_s:.1f} s")
        head = (f"{self.unit} {self.frames}  faces {self.faces}  drops {self.drops}  skipped {self.skipped}  "
                f"reconnects {self.reconnects}  {pace}")
        if not self.frames:
            return head
        p50, p95 = self.percentiles(50), self.percentiles(95)
        span = f" (last {self.window_frames} {self.unit})" if self.frames > self.window else ""
        lines = [head,
                 "latency ms   " + "  ".join(f"{s:>10}" for s in STAGES) + span,
                 "  p50        " + "  ".join(f"{p50[s]:10.2f}" for s in STAGES),
                 "  p95        " + "  ".join(f"{p95[s]:10.2f}" for s in STAGES)]
        return "\n".join(lines)

"""A periodic "still alive" line for headless runs: frames, faces, f/s, drops and memory.

A box running `fer-edge run --headless` as a service has no window; this line in its log
(the journal) is what tells an operator that it is processing and not stuck or leaking.
It keeps a few counters only, so nothing grows however long the run.
"""

from __future__ import annotations

from dataclasses import dataclass

import psutil


@dataclass(frozen=True, slots=True)
class Vitals:
    """One heartbeat: totals since the start and the rate over the last interval."""

    frames: int
    faces: int
    fps: float  # frames/s over the interval since the previous heartbeat
    drops: int
    skipped: int
    reconnects: int
    rss_mb: float

    def text(self) -> str:
        return (f"alive: frames {self.frames}  faces {self.faces}  {self.fps:.1f} frames/s  "
                f"drops {self.drops}  skipped {self.skipped}  reconnects {self.reconnects}  "
                f"rss {self.rss_mb:.1f} MB")


class Heartbeat:
    """Counts processed frames; when `due(now_s)`, `beat(now_s, ...)` gives the Vitals.

    `now_s` is a monotonic clock reading (time.monotonic); an interval of 0 or less is never due.
    """

    def __init__(self, interval_s: float, start_s: float):
        self.interval_s = float(interval_s)
        self.frames = 0
        self.faces = 0
        self._last_s = start_s
        self._last_frames = 0
        self._process = psutil.Process()

    def add(self, n_faces: int) -> None:
        self.frames += 1
        self.faces += int(n_faces)

    def due(self, now_s: float) -> bool:
        return self.interval_s > 0 and now_s - self._last_s >= self.interval_s

    def beat(self, now_s: float, drops: int = 0, skipped: int = 0, reconnects: int = 0) -> Vitals:
        """The vitals now (the capture's counters passed in), and a new interval starts."""
        fps = (self.frames - self._last_frames) / max(now_s - self._last_s, 1e-9)
        self._last_s, self._last_frames = now_s, self.frames
        rss_mb = self._process.memory_info().rss / 2**20
        return Vitals(self.frames, self.faces, fps, drops, skipped, reconnects, rss_mb)

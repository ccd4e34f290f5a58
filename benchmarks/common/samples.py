"""Per-frame samples of a benchmark run, their statistics, and the interleaved measuring loop.

`run_interleaved` measures one or more "sides" (objects with `step()`, `samples` and `name`:
fer-edge's pipeline in benchmarks.speed.pipeline, the peer in benchmarks.common.peer) in alternating
blocks of frames, accounting wall time, CPU time and RSS per side; `samples_report` turns
one side's RunSamples into the report's numbers.
"""

from __future__ import annotations

import logging
import time

import numpy as np
import psutil

log = logging.getLogger(__name__)

STAGES = ("decode", "detect", "preprocess", "classify", "track", "draw")
PERCENTILES = (50, 95, 99)


def rate(num: float, den: float) -> float | None:
    """num / den as a float; None when there is nothing to divide by (no cases, not 0 %)."""
    return float(num) / float(den) if den else None


def summarize(values_ms) -> dict:
    """Latencies in ms -> {"p50", "p95", "p99", "mean", "max", "n"} (zeros when empty)."""
    a = np.asarray(values_ms, dtype=np.float64)
    if a.size == 0:
        return {"p50": 0.0, "p95": 0.0, "p99": 0.0, "mean": 0.0, "max": 0.0, "n": 0}
    out = {f"p{p}": float(np.percentile(a, p)) for p in PERCENTILES}
    out.update(mean=float(a.mean()), max=float(a.max()), n=int(a.size))
    return out


class Series:
    """A float column with room for `capacity` values written up front, grown by doubling.

    Per-frame samples kept in Python lists cost ~30 bytes of new heap per value, which a
    10,000-frame soak would count as the pipeline's RSS growth; preallocated, touched arrays
    keep the harness out of its own measurement.
    """

    def __init__(self, capacity: int = 4096):
        self._a = np.full(max(int(capacity), 16), np.nan)  # written now: resident before the run
        self._n = 0

    def append(self, value: float) -> None:
        if self._n == self._a.size:
            self._a = np.concatenate([self._a, np.full(self._a.size, np.nan)])
        self._a[self._n] = value
        self._n += 1

    def __len__(self) -> int:
        return self._n

    def __array__(self, dtype=None, copy=None):
        a = self._a[:self._n]
        return a.astype(dtype) if dtype is not None else a

    def __iter__(self):
        return iter(self._a[:self._n])

    def __getitem__(self, i):
        return self._a[:self._n][i]


class RunSamples:
    """Per-frame measurements of one counted run (ms, MB); `capacity`: expected frame count."""

    def __init__(self, stages: tuple[str, ...] = STAGES, capacity: int = 4096):
        self.stages_ms: dict[str, Series] = {k: Series(capacity) for k in stages}
        self.end_to_end_ms = Series(capacity)
        self.pipeline_ms = Series(capacity)
        self.faces = Series(capacity)
        self.rss_mb = Series(capacity)  # after each counted frame
        self.t_s = Series(capacity)  # seconds of this side's own measuring time
        self.wall_s = 0.0
        self.cpu_s = 0.0
        self.interrupted = False


def _progress(total: int | None, desc: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="frame", disable=not enabled, leave=False,
                dynamic_ncols=True, mininterval=0.5)


def run_interleaved(sides: list, *, frames: int, duration_s: float | None = None, block: int = 25,
                    progress: bool = True) -> None:
    """Measure `sides` (objects with `step()` and `samples`) in alternating blocks of `block` frames.

    Alternating short blocks gives every side the same share of whatever else the machine is
    doing, so their ratio holds even on a busy machine. The first side decides the count: it
    runs `frames` frames (or for `duration_s` seconds of its own time), the others as many.
    Wall time, CPU time and RSS are accounted per side, for its own blocks only. Ctrl-C stops
    all sides and keeps what was measured.
    """
    proc = psutil.Process()
    total = None if duration_s else frames * len(sides)
    bar = _progress(total, " vs ".join(side.name for side in sides), progress)
    lead = sides[0].samples
    lead_done = False
    ended = [False] * len(sides)  # source exhausted
    try:
        while True:
            for i, side in enumerate(sides):
                s = side.samples
                cpu0 = proc.cpu_times()
                t0 = time.perf_counter()
                for _ in range(block):
                    n = len(s.end_to_end_ms)
                    if i == 0:
                        if duration_s is None and n >= frames:
                            lead_done = True
                        elif duration_s is not None and s.wall_s + time.perf_counter() - t0 >= duration_s:
                            lead_done = True
                    elif n >= len(lead.end_to_end_ms):
                        break  # caught up with the lead side's count
                    if (i == 0 and lead_done) or ended[i]:
                        break
                    if not side.step():
                        ended[i] = True
                        lead_done = lead_done or i == 0
                        break
                    now = time.perf_counter()
                    s.rss_mb.append(proc.memory_info().rss / 2**20)
                    s.t_s.append(s.wall_s + now - t0)
                    bar.update(1)
                settle = getattr(side, "settle", None)
                if settle is not None:
                    settle()  # its worker's frame in flight belongs to this block
                cpu1 = proc.cpu_times()
                s.wall_s += time.perf_counter() - t0
                s.cpu_s += (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
            bar.set_postfix({side.name: f"{len(side.samples.end_to_end_ms) / max(side.samples.wall_s, 1e-9):.0f} fps"
                             for side in sides}, refresh=False)
            if lead_done and all(ended[i] or len(side.samples.end_to_end_ms) >= len(lead.end_to_end_ms)
                                 for i, side in enumerate(sides[1:], start=1)):
                break
    except KeyboardInterrupt:
        for side in sides:
            side.samples.interrupted = True
        log.warning("interrupted; reporting the frames measured so far")
    finally:
        bar.close()


def samples_report(s: RunSamples) -> dict:
    """The numbers of one run: fps, latency, per stage, CPU, RSS, faces per frame."""
    n = len(s.end_to_end_ms)
    faces = np.asarray(s.faces, dtype=np.int64)
    rss = np.asarray(s.rss_mb, dtype=np.float64)
    return {
        "frames": n,
        "wall_s": round(s.wall_s, 3),
        "fps": n / s.wall_s if s.wall_s > 0 and n else 0.0,
        "latency_ms": summarize(s.end_to_end_ms),
        "pipeline_latency_ms": summarize(s.pipeline_ms),
        "stages": {k: summarize(v) for k, v in s.stages_ms.items()},
        "cpu_percent": 100.0 * s.cpu_s / s.wall_s if s.wall_s > 0 else 0.0,
        "rss_mb": {"start": float(rss[0]) if rss.size else 0.0, "peak": float(rss.max()) if rss.size else 0.0,
                   "end": float(rss[-1]) if rss.size else 0.0},
        "faces_per_frame": {"mean": float(faces.mean()) if faces.size else 0.0,
                            "min": int(faces.min()) if faces.size else 0,
                            "max": int(faces.max()) if faces.size else 0,
                            "frames_with_faces": int((faces > 0).sum())},
        "interrupted": s.interrupted,
    }

"""Rolling label shares for the live page: per second, how many faces showed each label.

The live thread adds every published frame; the page polls `snapshot()` through /api/live and
draws the last `window_s` seconds itself. Memory is bounded: one small count vector per second.
"""

from __future__ import annotations

import threading
from collections import deque

import numpy as np


class _Bucket:
    __slots__ = ("index", "counts", "frames")

    def __init__(self, index: int, n_labels: int):
        self.index = index  # floor(t / bucket_s)
        self.counts = np.zeros(n_labels, np.int64)  # faces per label
        self.frames = 0


class LabelShares:
    """`add(t_s, label_index)` per frame; `snapshot(now_s)` for the last window_s seconds."""

    def __init__(self, window_s: float = 60.0, bucket_s: float = 1.0):
        if window_s <= 0 or bucket_s <= 0:
            raise ValueError("window_s and bucket_s must be > 0")
        self.window_s = float(window_s)
        self.bucket_s = float(bucket_s)
        n = int(np.ceil(window_s / bucket_s)) + 1
        self._buckets: deque[_Bucket] = deque(maxlen=n)
        self._lock = threading.Lock()

    def add(self, t_s: float, label_index: np.ndarray, n_labels: int) -> None:
        """One frame at monotonic time t_s whose faces show these labels (column indices)."""
        b = int(t_s // self.bucket_s)
        counts = np.bincount(np.asarray(label_index, np.int64), minlength=n_labels)[:n_labels]
        with self._lock:
            if not self._buckets or self._buckets[-1].index != b or len(self._buckets[-1].counts) != n_labels:
                self._buckets.append(_Bucket(b, n_labels))
            last = self._buckets[-1]
            last.counts += counts
            last.frames += 1

    def snapshot(self, now_s: float) -> dict:
        """JSON-ready: per second still in the window, oldest first, its age (s), frames and
        face counts per label (a second with frames but no face has all-zero counts)."""
        now_b = int(now_s // self.bucket_s)
        keep = int(round(self.window_s / self.bucket_s))
        with self._lock:
            rows = [(now_b - x.index, x.counts.tolist(), x.frames) for x in self._buckets if now_b - x.index < keep]
        return {"window_s": self.window_s, "bucket_s": self.bucket_s,
                "age_s": [r[0] * self.bucket_s for r in rows], "counts": [r[1] for r in rows],
                "frames": [r[2] for r in rows]}

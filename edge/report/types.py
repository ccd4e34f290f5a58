"""The emotion report's types: its settings, a run read into columns, its tracks, their moments.

edge.report.read reads a run's JSON Lines into a RunLog, edge.report.summary summarises it and edge.report.chart draws it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class ReportConfig:
    top: int = 6  # tracks on the chart and in report.md's table, longest on screen first
    smooth_s: float = 1.0  # centred moving average of the charted probabilities
    min_moment_s: float = 1.0  # report.md lists label runs held at least this long
    max_gap_s: float = 1.0  # a face unseen for longer breaks its line; also caps a frame's weight
    chart: bool = True
    strict: bool = False  # raise on the first malformed line instead of skipping it

    def __post_init__(self):
        if self.top < 1:
            raise ValueError(f"top must be >= 1, got {self.top}")
        if self.smooth_s < 0 or self.min_moment_s < 0 or self.max_gap_s <= 0:
            raise ValueError("smooth_s and min_moment_s must be >= 0 and max_gap_s > 0")


@dataclass(frozen=True)
class RunLog:
    """A parsed run in columns: m frames, n face rows, C labels."""

    path: Path
    labels: tuple[str, ...]  # C, the column order of `probs`
    # per frame (m,)
    frame: np.ndarray  # int64, the record's frame index
    t: np.ndarray  # float64 seconds as written
    segment: np.ndarray  # int32, 1-based run within the file
    weight_s: np.ndarray  # float64 duration each frame stands for (see module docstring)
    source: tuple[str, ...]  # per frame; "" unless image/folder mode
    # per face row (n,)
    row_frame: np.ndarray  # int64 index into the frame columns
    track_id: np.ndarray  # int64, -1 when the run had no tracking
    box: np.ndarray  # (n, 4) int32 x1, y1, x2, y2 in source pixels
    score: np.ndarray  # float32 detector confidence (NaN when absent)
    label: np.ndarray  # int64 shown label, index into labels
    confidence: np.ndarray  # float32
    probs: np.ndarray  # (n, C) float32
    lines: int  # non-blank lines read
    bad_lines: tuple[tuple[int, str], ...] = ()  # (line number, reason), the first edge.report.MAX_LISTED_BAD_LINES
    n_bad: int = 0
    images: bool = False  # records carried "source": t counts images, not seconds

    @property
    def n_frames(self) -> int:
        return int(self.frame.shape[0])

    @property
    def n_faces(self) -> int:
        return int(self.track_id.shape[0])

    @property
    def n_segments(self) -> int:
        return int(self.segment.max()) if self.n_frames else 0

    def columns(self, rows: slice = slice(None)) -> dict[str, np.ndarray]:
        """One flat column per field of frames.csv, one row per face per frame (`rows` of them)."""
        f = self.row_frame[rows]
        box = self.box[rows]
        cols: dict[str, np.ndarray] = {
            "segment": self.segment[f], "frame": self.frame[f], "t": self.t[f],
            "source": np.asarray([self.source[i] for i in f.tolist()], dtype=object),
            "track_id": self.track_id[rows],
            "x1": box[:, 0], "y1": box[:, 1], "x2": box[:, 2], "y2": box[:, 3],
            "score": self.score[rows],
            "emotion": np.asarray(self.labels or ("",), dtype=object)[self.label[rows]],
            "confidence": self.confidence[rows],
        }
        probs = self.probs[rows]
        for k, name in enumerate(self.labels):
            cols[f"p_{name}"] = probs[:, k]
        return cols


@dataclass(frozen=True)
class TrackSummary:
    """One row per track, in columns, longest on screen first (k tracks)."""

    labels: tuple[str, ...]
    segment: np.ndarray  # (k,) int32
    track_id: np.ndarray  # (k,) int64
    first_s: np.ndarray  # (k,) float64, the segment's own t
    last_s: np.ndarray
    seen_s: np.ndarray  # time on screen: the summed weights of its frames
    frames: np.ndarray  # (k,) int64
    share: np.ndarray  # (k, C) float64 share of seen_s per shown label
    dominant: np.ndarray  # (k,) int64
    mean_confidence: np.ndarray  # (k,) float64
    label_changes: np.ndarray  # (k,) int64 changes of the shown label
    rows: tuple[np.ndarray, ...]  # per track, its face rows in time order (indices into RunLog rows)

    def __len__(self) -> int:
        return int(self.track_id.shape[0])

    def name(self, i: int) -> str:
        """`#7`, or `2:#7` when the file holds several runs."""
        return f"#{int(self.track_id[i])}" if int(self.segment.max()) <= 1 else \
            f"{int(self.segment[i])}:#{int(self.track_id[i])}"


@dataclass(frozen=True)
class Moment:
    """A label a track held without a break for at least ReportConfig.min_moment_s."""

    track: int  # index into TrackSummary
    label: int
    start_s: float
    end_s: float


@dataclass(frozen=True)
class ReportOutcome:
    log: RunLog
    summary: TrackSummary
    paths: dict[str, Path] = field(default_factory=dict)  # kind -> written file
    shares: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (C,) all faces, time-weighted

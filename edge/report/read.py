"""Reading the JSON Lines of `fer-edge run` into columns, for the report and for analysis.

    from edge.report.read import load_jsonl, read_run
    faces = load_jsonl("faces.jsonl")   # a pandas DataFrame when pandas is installed, else columns
    log = read_run("faces.jsonl")       # a RunLog (edge.report.types): frames, faces, labels in arrays

Each line is parsed by edge.record. Malformed lines are skipped, counted and listed with their
line numbers (`RunLog.bad_lines`); `strict=True` raises on the first.

Times: `t` is the record's own time (video position, seconds since a camera started, or the
image's index for folders). A file that `--append` extended holds several runs, each starting
again at frame 0: they are numbered `segment` 1, 2, ... and a track is (segment, track_id).
Each frame stands for the gap to the next frame (at most `max_gap_s`), so shares of time stay
in seconds when a camera's frame rate varies. pandas is imported only when `load_jsonl`
returns a DataFrame.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edge.record import parse_record
from edge.report.chart import CHART_EXTRA
from edge.report.types import RunLog

MAX_LISTED_BAD_LINES = 20  # malformed lines kept with their reason; the rest are only counted


class ReportError(ValueError):
    """The file cannot be reported on (missing, empty, no valid line, or malformed in strict mode)."""


class _Columns:
    """One parse's columns: short python lists, turned into arrays every CHUNK rows, so that a
    day-long file costs the memory of its arrays, not of millions of python floats."""

    CHUNK = 65_536
    DTYPES = {"frame": np.int64, "t": np.float64, "row_frame": np.int64, "track_id": np.int64,
              "box": np.float64, "score": np.float32, "label": np.int64, "confidence": np.float32,
              "probs": np.float32}

    def __init__(self):
        self.labels: tuple[str, ...] | None = None  # from the first face's probs, in their order
        self.label_index: dict[str, int] = {}
        self.n_frames = 0
        self.source: list[str] = []
        self.frame, self.t = [], []
        self.row_frame, self.track_id, self.box, self.score = [], [], [], []
        self.label, self.confidence, self.probs = [], [], []
        self._arrays: dict[str, list[np.ndarray]] = {k: [] for k in self.DTYPES}

    def flush(self, force: bool = False) -> None:
        if not force and len(self.row_frame) < self.CHUNK and len(self.frame) < self.CHUNK:
            return
        for name, dtype in self.DTYPES.items():
            pending = getattr(self, name)
            if pending:
                self._arrays[name].append(np.asarray(pending, dtype))
                setattr(self, name, [])

    def array(self, name: str, tail: tuple[int, ...] = ()) -> np.ndarray:
        self.flush(force=True)
        parts = self._arrays[name]
        return np.concatenate(parts) if parts else np.zeros((0, *tail), self.DTYPES[name])


def _parse_record(line: str, cols: _Columns) -> None:
    """Append one record's frame and faces to cols, or raise ValueError and append nothing."""
    rec = parse_record(line)
    parsed = []
    for j, face in enumerate(rec.faces):
        if cols.labels is None:
            cols.labels = tuple(face.probs)
            cols.label_index = {name: k for k, name in enumerate(cols.labels)}
        elif tuple(face.probs) != cols.labels:
            raise ValueError(f"face {j}: 'probs' labels {list(face.probs)} differ from the file's {list(cols.labels)}")
        parsed.append((face.id, face.box, face.score, cols.label_index[face.emotion], face.confidence,
                       list(face.probs.values())))
    # Only a whole valid line is kept: its frame and all its faces, or nothing.
    fi = cols.n_frames
    cols.n_frames += 1
    cols.frame.append(rec.frame)
    cols.t.append(rec.t)
    cols.source.append(rec.source)
    for tid, box, score, li, conf, p in parsed:
        cols.row_frame.append(fi)
        cols.track_id.append(tid)
        cols.box.append(box)
        cols.score.append(score)
        cols.label.append(li)
        cols.confidence.append(conf)
        cols.probs.append(p)


def read_run(path: str | Path, *, strict: bool = False, max_gap_s: float = 1.0, progress: bool = False) -> RunLog:
    """Parse a `fer-edge run` JSONL file into columns.

    Malformed lines are skipped and listed in `bad_lines` with their 1-based line numbers;
    with strict=True the first one raises ReportError. Raises ReportError when the file is
    missing or holds no valid record.
    """
    path = Path(path)
    if not path.is_file():
        raise ReportError(f"{path}: no such file (expected the JSONL of `fer-edge run --jsonl FILE`)")
    cols = _Columns()
    bad: list[tuple[int, str]] = []
    n_bad = lines = 0
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=path.stat().st_size, unit="B", unit_scale=True, unit_divisor=1024,
                   desc=f"reading {path.name}", leave=False, mininterval=0.5)
    try:
        with open(path, "rb") as f:
            for number, raw in enumerate(f, start=1):
                if bar is not None:
                    bar.update(len(raw))
                line = raw.strip()
                if not line:
                    continue
                lines += 1
                try:
                    _parse_record(line.decode("utf-8"), cols)
                    cols.flush()
                except (ValueError, UnicodeDecodeError) as exc:
                    reason = str(exc) if isinstance(exc, ValueError) else "not UTF-8 text"
                    if strict:
                        raise ReportError(f"{path}: line {number}: {reason}") from None
                    n_bad += 1
                    if len(bad) < MAX_LISTED_BAD_LINES:
                        bad.append((number, reason))
    finally:
        if bar is not None:
            bar.close()
    if not cols.n_frames:
        first = f"; line {bad[0][0]}: {bad[0][1]}" if bad else ""
        raise ReportError(f"{path}: no valid record in {lines} line(s){first}")
    labels = cols.labels or ()  # frames but never a face: the labels are unknown, and not needed
    frame = cols.array("frame")
    t = cols.array("t")
    # An appended file restarts at frame 0: each restart begins a new segment.
    restart = np.concatenate([[False], frame[1:] <= frame[:-1]])
    segment = (np.cumsum(restart) + 1).astype(np.int32)
    return RunLog(
        path=path, labels=tuple(labels), frame=frame, t=t, segment=segment,
        weight_s=_frame_weights(t, segment, max_gap_s), source=tuple(cols.source),
        row_frame=cols.array("row_frame"), track_id=cols.array("track_id"),
        box=cols.array("box", (4,)).round().astype(np.int32), score=cols.array("score"),
        label=cols.array("label"), confidence=cols.array("confidence"),
        probs=cols.array("probs", (len(labels),)),
        lines=lines, bad_lines=tuple(bad), n_bad=n_bad, images=any(cols.source))


def _frame_weights(t: np.ndarray, segment: np.ndarray, max_gap_s: float) -> np.ndarray:
    """Seconds each frame stands for: the gap to the next frame of its segment, capped at
    max_gap_s (a paused source is not time on screen); a segment's last frame gets the median."""
    w = np.zeros_like(t)
    if len(t) > 1:
        same = segment[1:] == segment[:-1]
        gap = np.clip(np.diff(t), 0.0, max_gap_s)
        w[:-1] = np.where(same, gap, np.nan)
    w[-1] = np.nan
    for s in np.unique(segment):
        sel = segment == s
        known = w[sel][~np.isnan(w[sel])]
        fill = float(np.median(known)) if known.size and np.median(known) > 0 else min(1.0, max_gap_s)
        ws = w[sel]
        ws[np.isnan(ws)] = fill
        w[sel] = ws
    if not np.any(w > 0):  # every frame at the same t: count frames instead
        w[:] = 1.0
    return w


def load_jsonl(path: str | Path, *, as_frame: bool | None = None, strict: bool = False, progress: bool = False):
    """One row per face per frame, the columns of frames.csv.

    as_frame: None returns a pandas DataFrame when pandas is installed, else a dict of NumPy
    columns; True insists on pandas (ImportError without it); False always returns the dict.
    Malformed lines are skipped (see read_run); strict=True raises ReportError on the first.
    """
    cols = read_run(path, strict=strict, progress=progress).columns()
    if as_frame is False:
        return cols
    try:
        import pandas as pd
    except ImportError:
        if as_frame:
            from edge.cli import install_hint

            raise ImportError(f"as_frame=True needs pandas: {install_hint(CHART_EXTRA)}") from None
        return cols
    return pd.DataFrame(cols)

"""Emotion timelines: a run's columns (edge.report.read) -> per-track tables, a chart and a report.

    from edge.report.summary import make_report
    from edge.report.types import ReportConfig
    outcome = make_report("faces.jsonl", "report/", ReportConfig(top=6))

`make_report` writes `timeline.png` (matplotlib), `summary.csv` (one row per track),
`frames.csv` (one row per face per frame) and `report.md`. Shares of time weight each face by
its frame's duration (edge.report.read), so a camera whose frame rate varies is still measured
in seconds. matplotlib is imported only to draw the chart (edge.report.chart). The types
(RunLog, TrackSummary, ReportConfig, ...) live in edge.report.types.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

from edge.atomic import atomic_path
from edge.report.chart import check_chart_dependency, write_timeline_png
from edge.report.read import read_run
from edge.report.types import Moment, ReportConfig, ReportOutcome, RunLog, TrackSummary

MAX_LISTED_MOMENTS = 20  # per track in report.md


# ------------------------------------------------------------------------------------- summary


def summarize(log: RunLog) -> TrackSummary:
    """Per track (segment, track_id): times, frames, label shares, dominant label, confidence."""
    c = len(log.labels)
    if log.n_faces == 0:
        z = np.zeros(0)
        return TrackSummary(labels=log.labels, segment=np.zeros(0, np.int32), track_id=np.zeros(0, np.int64),
                            first_s=z, last_s=z, seen_s=z, frames=np.zeros(0, np.int64), share=np.zeros((0, c)),
                            dominant=np.zeros(0, np.int64), mean_confidence=z,
                            label_changes=np.zeros(0, np.int64), rows=())
    seg = log.segment[log.row_frame].astype(np.int64)
    keys, inverse = np.unique(np.stack([seg, log.track_id], axis=1), axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    k = len(keys)
    t = log.t[log.row_frame]
    w = log.weight_s[log.row_frame]
    order = np.lexsort((t, inverse))  # rows grouped by track, in time order within each
    starts = np.searchsorted(inverse[order], np.arange(k))
    ends = np.append(starts[1:], len(order))
    frames = np.bincount(inverse, minlength=k)
    seen = np.bincount(inverse, weights=w, minlength=k)
    per_label = np.bincount(inverse * c + log.label, weights=w, minlength=k * c).reshape(k, c)
    share = per_label / np.maximum(seen, 1e-12)[:, None]
    conf = np.bincount(inverse, weights=log.confidence.astype(np.float64), minlength=k) / np.maximum(frames, 1)
    lab = log.label[order]
    change = np.concatenate([[0], (lab[1:] != lab[:-1]).astype(np.int64)])
    change[starts] = 0  # the first row of a track is not a change
    changes = np.add.reduceat(change, starts) if len(order) else np.zeros(k, np.int64)
    first = t[order][starts]
    last = t[order][ends - 1]
    rank = np.lexsort((keys[:, 1], keys[:, 0], -seen))  # longest on screen first; ties by segment, id
    rows = tuple(order[starts[i]:ends[i]] for i in rank)
    return TrackSummary(labels=log.labels, segment=keys[rank, 0].astype(np.int32), track_id=keys[rank, 1],
                        first_s=first[rank], last_s=last[rank], seen_s=seen[rank], frames=frames[rank],
                        share=share[rank], dominant=np.argmax(share[rank], axis=1), mean_confidence=conf[rank],
                        label_changes=changes[rank], rows=rows)


def label_shares(log: RunLog) -> np.ndarray:
    """(C,) share of all face time per shown label, time-weighted (zeros when no face)."""
    c = len(log.labels)
    if log.n_faces == 0:
        return np.zeros(c)
    per = np.bincount(log.label, weights=log.weight_s[log.row_frame], minlength=c)
    return per / max(per.sum(), 1e-12)


def moments(log: RunLog, summary: TrackSummary, tracks, min_s: float, max_gap_s: float) -> list[Moment]:
    """Per track (indices into summary), the labels held at least min_s, in time order.

    A run of one shown label ends at a change of label or an unseen gap over max_gap_s; runs
    shorter than min_s are dropped, and two kept runs of the same label with less than min_s
    between them (a brief other label, or a brief miss) become one.
    """
    out = []
    for i in tracks:
        rows = summary.rows[i]
        fr = log.row_frame[rows]
        t = log.t[fr]
        end_t = t + log.weight_s[fr]
        lab = log.label[rows]
        brk = np.flatnonzero((lab[1:] != lab[:-1]) | (np.diff(t) > max_gap_s)) + 1
        kept: list[Moment] = []
        for a, b in zip(np.concatenate([[0], brk]), np.concatenate([brk, [len(rows)]])):
            start, end = float(t[a]), float(end_t[b - 1])
            if end - start < min_s:
                continue
            if kept and kept[-1].label == int(lab[a]) and start - kept[-1].end_s < min_s:
                kept[-1] = Moment(track=i, label=int(lab[a]), start_s=kept[-1].start_s, end_s=end)
            else:
                kept.append(Moment(track=i, label=int(lab[a]), start_s=start, end_s=end))
        out += kept
    return out


# ------------------------------------------------------------------------------------- writing


def _atomic_write(path: Path, write, binary: bool = False) -> Path:
    """write(file) into a file that replaces path once complete (edge.atomic): a report
    rewritten in place (run --report on each restart) is never seen half written. The file
    gets the user's umask, as any file opened here would."""
    with atomic_path(path) as tmp:
        with (open(tmp, "xb") if binary else open(tmp, "x", encoding="utf-8", newline="")) as f:
            write(f)
    return path


def _fmt(v, nd: int = 4):
    """Floats rounded for CSV; NaN as an empty cell."""
    return "" if isinstance(v, float) and math.isnan(v) else round(v, nd) if isinstance(v, float) else v


def _csv_columns(cols: dict[str, np.ndarray]) -> list[list]:
    """Columns as python lists for csv: floats rounded to 4 places, NaN as an empty cell."""
    out = []
    for col in cols.values():
        if col.dtype.kind == "f":
            col = np.round(col.astype(np.float64), 4)
            out.append(["" if math.isnan(v) else v for v in col.tolist()] if np.isnan(col).any() else col.tolist())
        else:
            out.append(col.tolist())
    return out


def write_frames_csv(log: RunLog, path: str | Path, chunk: int = 65_536) -> Path:
    def write(f):
        w = csv.writer(f, lineterminator="\n")
        w.writerow(list(log.columns(slice(0, 0))))
        for start in range(0, log.n_faces, chunk):
            w.writerows(zip(*_csv_columns(log.columns(slice(start, start + chunk)))))

    return _atomic_write(Path(path), write)


def write_summary_csv(summary: TrackSummary, path: str | Path) -> Path:
    labels = summary.labels

    def write(f):
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["segment", "track_id", "first_s", "last_s", "seen_s", "frames",
                    *(f"share_{x}" for x in labels), "dominant", "mean_confidence", "label_changes"])
        for i in range(len(summary)):
            w.writerow([int(summary.segment[i]), int(summary.track_id[i]), _fmt(float(summary.first_s[i]), 3),
                        _fmt(float(summary.last_s[i]), 3), _fmt(float(summary.seen_s[i]), 3), int(summary.frames[i]),
                        *(_fmt(float(v)) for v in summary.share[i]), labels[int(summary.dominant[i])],
                        _fmt(float(summary.mean_confidence[i])), int(summary.label_changes[i])])

    return _atomic_write(Path(path), write)


def _pct(v: float) -> str:
    return f"{100 * v:.1f} %"


def report_markdown(log: RunLog, summary: TrackSummary, shares: np.ndarray, config: ReportConfig,
                    files: dict[str, str]) -> str:
    """report.md: the run at a glance, label shares, the top tracks and their moments."""
    labels = log.labels
    span = float(log.weight_s.sum())
    unit = "images" if log.images else "s"
    lines = [f"# Emotion report: {log.path.name}", ""]
    facts = [f"{log.n_frames:,} frames" + (f", {span:.1f} {unit} of footage" if not log.images else ""),
             f"{log.n_faces:,} faces in {len(summary)} track{'s' if len(summary) != 1 else ''}",
             f"{log.n_faces / max(log.n_frames, 1):.2f} faces per frame"]
    if log.n_segments > 1:
        facts.append(f"{log.n_segments} runs appended to one file (tracks are named run:#id)")
    lines += [f"Source: `{log.path}`: " + "; ".join(facts) + ".", ""]
    if log.n_bad:
        listed = ", ".join(str(n) for n, _ in log.bad_lines)
        more = f" (the first {len(log.bad_lines)} listed)" if log.n_bad > len(log.bad_lines) else ""
        lines += [f"**{log.n_bad} malformed line{'s' if log.n_bad != 1 else ''} skipped**{more}: "
                  f"line {listed}. First: line {log.bad_lines[0][0]}: {log.bad_lines[0][1]}.", ""]
    links = [f"[{name}]({name})" for name in files.values()]
    lines += ["Files: " + ", ".join(links) + ".", ""]
    if "timeline" in files:
        lines += [f"![emotion timeline]({files['timeline']})", ""]
    if labels and log.n_faces:
        lines += ["## Share of each label", "",
                  "Time each shown label held, over all faces" + ("" if log.images else ", weighted by frame duration")
                  + ".", "",
                  "| " + " | ".join(labels) + " |", "|" + "---:|" * len(labels),
                  "| " + " | ".join(_pct(v) for v in shares) + " |", ""]
    shown = min(config.top, len(summary))
    if shown:
        which = f"all {len(summary)}" if shown == len(summary) else f"top {shown} of {len(summary)}"
        lines += [f"## Tracks ({which}, longest on screen first)", "",
                  f"| track | first {unit} | last {unit} | on screen {unit} | frames | dominant | its share | "
                  "mean confidence | label changes |",
                  "|---|---:|---:|---:|---:|---|---:|---:|---:|"]
        for i in range(shown):
            d = int(summary.dominant[i])
            lines.append(f"| {summary.name(i)} | {summary.first_s[i]:.1f} | {summary.last_s[i]:.1f} | "
                         f"{summary.seen_s[i]:.1f} | {int(summary.frames[i])} | {labels[d]} | "
                         f"{_pct(summary.share[i, d])} | {summary.mean_confidence[i]:.2f} | "
                         f"{int(summary.label_changes[i])} |")
        lines.append("")
        found = moments(log, summary, range(shown), config.min_moment_s, config.max_gap_s)
        lines += [f"## Moments (a label held for at least {config.min_moment_s:g} {unit})", ""]
        if not found:
            lines += ["None.", ""]
        for i in range(shown):
            mine = [m for m in found if m.track == i]
            if mine:
                more = len(mine) - MAX_LISTED_MOMENTS
                lines.append(f"- {summary.name(i)}: " + "; ".join(
                    f"{labels[m.label]} {m.start_s:.1f}-{m.end_s:.1f} {unit}" for m in mine[:MAX_LISTED_MOMENTS])
                    + (f"; ... and {more} more (frames.csv has every frame)" if more > 0 else ""))
        lines.append("")
    return "\n".join(lines)


def make_report(jsonl: str | Path, out_dir: str | Path, config: ReportConfig = ReportConfig(), *,
                progress: bool = False) -> ReportOutcome:
    """Read a run's JSONL and write timeline.png (unless config.chart is off), summary.csv,
    frames.csv and report.md into out_dir. Raises ReportError, MissingChartDependency."""
    if config.chart:
        check_chart_dependency()
    log = read_run(jsonl, strict=config.strict, max_gap_s=config.max_gap_s, progress=progress)
    summary = summarize(log)
    shares = label_shares(log)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    if log.images:  # photos: a per-image table (edge.report.photos); no timeline, no tracks
        from edge.report.photos import photo_markdown, write_images_csv

        paths["summary"] = write_images_csv(log, out / "summary.csv", _atomic_write)
        paths["frames"] = write_frames_csv(log, out / "frames.csv")
        md = photo_markdown(log, config, {k: p.name for k, p in paths.items()})
        paths["report"] = _atomic_write(out / "report.md", lambda f: f.write(md))
        return ReportOutcome(log=log, summary=summary, paths=paths, shares=shares)
    if config.chart:
        paths["timeline"] = write_timeline_png(log, summary, out / "timeline.png", config)
    paths["summary"] = write_summary_csv(summary, out / "summary.csv")
    paths["frames"] = write_frames_csv(log, out / "frames.csv")
    md = report_markdown(log, summary, shares, config, {k: p.name for k, p in paths.items()})
    paths["report"] = _atomic_write(out / "report.md", lambda f: f.write(md))
    return ReportOutcome(log=log, summary=summary, paths=paths, shares=shares)

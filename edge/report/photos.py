"""The emotion report of a photo run (an image, a folder or a glob): images, not a timeline.

Unrelated photos have no time axis and no tracks (each image's faces are numbered 1..n), so a
photo run's report is a per-image table instead: summary.csv has one row per image with its
file name, its face count and how many faces show each label; report.md counts the labels over
all faces and lists the images. No timeline.png is drawn.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from edge.report.types import ReportConfig, RunLog

MAX_LISTED_IMAGES = 200  # rows of report.md's image table; summary.csv has them all


def label_counts_per_image(log: RunLog) -> np.ndarray:
    """(m, C) int64: per image (frame), how many of its faces show each label."""
    c = max(len(log.labels), 1)
    flat = np.bincount(log.row_frame * c + log.label, minlength=log.n_frames * c)
    return flat.reshape(log.n_frames, c)


def write_images_csv(log: RunLog, path: Path, write_atomic) -> Path:
    """summary.csv of a photo run: image, file, frame, faces, count_<label>..., dominant, mean_confidence."""
    counts = label_counts_per_image(log)
    faces = counts.sum(axis=1)
    conf_sum = np.bincount(log.row_frame, weights=log.confidence.astype(np.float64), minlength=log.n_frames)

    def write(f):
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["image", "file", "frame", "faces", *(f"count_{x}" for x in log.labels), "dominant",
                    "mean_confidence"])
        for i in range(log.n_frames):
            n = int(faces[i])
            dominant = log.labels[int(np.argmax(counts[i]))] if n else ""
            mean = f"{conf_sum[i] / n:.4f}" if n else ""
            w.writerow([i + 1, log.source[i], int(log.frame[i]), n, *(int(v) for v in counts[i]), dominant, mean])

    return write_atomic(path, write)


def photo_markdown(log: RunLog, config: ReportConfig, files: dict[str, str]) -> str:
    """report.md of a photo run: images and faces, label counts over all faces, the per-image table."""
    labels = log.labels
    counts = label_counts_per_image(log)
    faces = counts.sum(axis=1)
    with_face = int((faces > 0).sum())
    lines = [f"# Emotion report: {log.path.name}", "",
             f"Source: `{log.path}`: {log.n_frames:,} image{'s' if log.n_frames != 1 else ''}, "
             f"{log.n_faces:,} face{'s' if log.n_faces != 1 else ''} ({with_face:,} images with at least one face).",
             ""]
    if log.n_bad:
        listed = ", ".join(str(n) for n, _ in log.bad_lines)
        lines += [f"**{log.n_bad} malformed line{'s' if log.n_bad != 1 else ''} skipped**: line {listed}. "
                  f"First: line {log.bad_lines[0][0]}: {log.bad_lines[0][1]}.", ""]
    lines += ["Files: " + ", ".join(f"[{name}]({name})" for name in files.values()) + ".", ""]
    if labels and log.n_faces:
        total = counts.sum(axis=0)
        lines += ["## Labels, over all faces", "",
                  "| " + " | ".join(labels) + " |", "|" + "---:|" * len(labels),
                  "| " + " | ".join(f"{int(n)} ({100 * n / log.n_faces:.1f} %)" for n in total) + " |", ""]
    shown = min(MAX_LISTED_IMAGES, log.n_frames)
    if shown:
        more = f" (the first {shown}; summary.csv has all {log.n_frames})" if shown < log.n_frames else ""
        lines += [f"## Images{more}", "", "| # | file | faces | labels |", "|---:|---|---:|---|"]
        for i in range(shown):
            found = ", ".join(f"{labels[k]} {int(counts[i, k])}" for k in np.flatnonzero(counts[i])) or "none"
            lines.append(f"| {i + 1} | {Path(log.source[i]).name or '-'} | {int(faces[i])} | {found} |")
        lines.append("")
    return "\n".join(lines)

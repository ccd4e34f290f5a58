"""`fer-edge data explore`: per-split class counts, a sample grid and a class-distribution plot."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.atomic import atomic_path, atomic_write_text
from edge.labels import LABELS
from train.data import SPLITS, FerData

_SPLIT_NAMES = {"train": "Training", "public": "PublicTest", "private": "PrivateTest"}


@dataclass(frozen=True)
class ExploreReport:
    counts: dict  # split -> {label: count}
    text: str
    grid_png: Path
    distribution_png: Path


def explore(data: FerData, out_dir: Path, per_class: int = 8, seed: int = 0) -> ExploreReport:
    """Count classes per split and write `samples.png`, `distribution.png` and `counts.json`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    counts = {s: dict(zip(LABELS, data.split(s).class_counts())) for s in SPLITS}

    # Sample grid: one row per class, `per_class` random training faces.
    rng = np.random.default_rng(seed)
    tr = data.train
    fig, axes = plt.subplots(len(LABELS), per_class, figsize=(per_class * 0.9, len(LABELS) * 0.95))
    for r, name in enumerate(LABELS):
        idx = np.flatnonzero(tr.labels == r)
        pick = rng.choice(idx, size=min(per_class, len(idx)), replace=False) if len(idx) else []
        for c in range(per_class):
            ax = axes[r, c]
            ax.axis("off")
            if c < len(pick):
                ax.imshow(tr.images[pick[c]], cmap="gray", vmin=0, vmax=255, interpolation="nearest")
        axes[r, 0].set_title(name, fontsize=8, loc="left")
    fig.suptitle("FER-2013 training samples", fontsize=10)
    fig.tight_layout()
    grid = _save(fig, out_dir / "samples.png")
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(8, 4))
    width = 0.27
    x = np.arange(len(LABELS))
    for i, s in enumerate(SPLITS):
        total = max(sum(counts[s].values()), 1)
        vals = [counts[s][n] / total for n in LABELS]
        ax.bar(x + (i - 1) * width, vals, width, label=f"{_SPLIT_NAMES[s]} (n={total})")
    ax.set_xticks(x, LABELS)
    ax.set(ylabel="share of split", title="FER-2013 class distribution")
    ax.legend()
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    dist = _save(fig, out_dir / "distribution.png")
    plt.close(fig)

    summary = {"source": data.source, "layout": data.layout, "split_note": data.split_note,
               "skipped": list(data.skipped), "counts": counts}
    atomic_write_text(out_dir / "counts.json", json.dumps(summary, indent=1) + "\n", mode=None)
    return ExploreReport(counts, _format(data, counts, grid, dist), grid, dist)


def _save(fig, path: Path) -> Path:
    with atomic_path(path) as tmp:  # an interrupted run leaves no half-written PNG
        fig.savefig(tmp, dpi=110)
    return path


def _format(data: FerData, counts: dict, grid: Path, dist: Path) -> str:
    head = f"{'class':<9}" + "".join(f"{_SPLIT_NAMES[s]:>13}" for s in SPLITS)
    lines = [f"FER-2013 from {data.source} ({data.layout} layout)", f"splits: {data.split_note}", head]
    for name in LABELS:
        lines.append(f"{name:<9}" + "".join(f"{counts[s][name]:>13}" for s in SPLITS))
    lines.append(f"{'total':<9}" + "".join(f"{sum(counts[s].values()):>13}" for s in SPLITS))
    if data.skipped:
        lines.append(f"skipped {len(data.skipped)} undecodable file(s): " + ", ".join(data.skipped[:5])
                     + (" ..." if len(data.skipped) > 5 else ""))
    lines.append(f"wrote {grid} and {dist}")
    return "\n".join(lines)

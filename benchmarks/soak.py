"""The soak: many frames through the pipeline, RSS sampled after each, its growth reported.

    report = run_soak(BenchConfig(source="video.mp4", frames=10_000, peer="off"))
    report["rss_growth_mb"]

A short video is rewound as often as needed. Growth is measured from the first to the last
tenth of the run (medians, so that one allocation spike does not decide it), after the warm-up
frames; the slope of a straight-line fit (MB per 1,000 frames) is reported beside it.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import numpy as np

from benchmarks.pipeline import BenchConfig, run_pipeline_bench, to_json


def rss_growth(rss_mb, frac: float = 0.1) -> dict:
    """RSS samples (MB, one per frame) -> growth between the first and last `frac` of the run."""
    a = np.asarray(rss_mb, dtype=np.float64)
    if a.size == 0:
        return {"rss_growth_mb": 0.0, "rss_slope_mb_per_1k_frames": 0.0, "rss_first_mb": 0.0, "rss_last_mb": 0.0,
                "rss_peak_mb": 0.0}
    k = max(1, int(a.size * frac))
    first, last = float(np.median(a[:k])), float(np.median(a[-k:]))
    slope = float(np.polyfit(np.arange(a.size), a, 1)[0] * 1000) if a.size > 1 else 0.0
    return {"rss_growth_mb": last - first, "rss_slope_mb_per_1k_frames": slope, "rss_first_mb": first,
            "rss_last_mb": last, "rss_peak_mb": float(a.max())}


def run_soak(config: BenchConfig, progress: bool = True) -> dict:
    """The pipeline benchmark with the peer off, plus RSS growth; returns the report."""
    report = run_pipeline_bench(replace(config, peer="off"), progress=progress)
    report["kind"] = "soak"
    report.update(rss_growth(report["_samples"].rss_mb))
    report.pop("peer_note", None)
    return report


def markdown(report: dict) -> str:
    w, h = report["resolution"]
    return (f"### Soak: {report['frames']} frames of {Path(report['source']).name} ({w}x{h}), "
            f"{report['wall_s']:.0f} s\n\n"
            f"- RSS growth **{report['rss_growth_mb']:+.1f} MB** (median of the first vs the last tenth), "
            f"slope {report['rss_slope_mb_per_1k_frames']:+.3f} MB per 1,000 frames, "
            f"peak {report['rss_peak_mb']:.0f} MB\n"
            f"- frames/s {report['fps']:.1f}, latency p50 {report['latency_ms']['p50']:.2f} ms, "
            f"p95 {report['latency_ms']['p95']:.2f} ms, CPU {report['cpu_percent']:.0f} %\n")


def plot(report: dict, path: str | os.PathLike) -> Path:
    """RSS (MB) over the frames of the run, PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rss = np.asarray(report["_samples"].rss_mb)
    fig, ax = plt.subplots(figsize=(6.5, 3.2))
    ax.plot(np.arange(1, len(rss) + 1), rss, lw=1)
    ax.set_xlabel("frame")
    ax.set_ylabel("RSS MB")
    ax.set_title(f"RSS over {len(rss)} frames: growth {report['rss_growth_mb']:+.1f} MB")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def write_outputs(report: dict, json_path: str | os.PathLike) -> dict[str, Path]:
    json_path = Path(json_path)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(to_json(report), indent=2) + "\n")
    md = json_path.with_suffix(".md")
    md.write_text(markdown(report))
    return {"json": json_path, "markdown": md, "plot": plot(report, json_path.with_suffix(".png"))}

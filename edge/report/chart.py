"""The emotion report's chart: timeline.png, per track the stacked smoothed probabilities over
time in the overlay's label colours (edge.report.summary makes the rest of the report).

matplotlib is imported only to draw, and only here.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np

from edge.atomic import atomic_write_bytes
from edge.report.types import ReportConfig, RunLog, TrackSummary

CHART_EXTRA = "report"  # the extra that brings matplotlib and pandas (edge.cli.install_hint says how)
_MAX_POINTS = 2000  # per track on the chart; longer tracks are thinned after smoothing


class MissingChartDependency(ImportError):
    """matplotlib is needed for timeline.png."""


def _rgb(label: str, index: int) -> tuple[float, float, float]:
    from edge.outputs.overlay import label_color

    b, g, r = label_color(label, index)
    return (r / 255.0, g / 255.0, b / 255.0)


def _rolling_mean(x: np.ndarray, half: int) -> np.ndarray:
    """Centred moving average over 2*half+1 rows (fewer at the ends); x is (n, C)."""
    if half <= 0 or len(x) < 2:
        return x
    n = len(x)
    c = np.concatenate([np.zeros((1, x.shape[1])), np.cumsum(x, axis=0, dtype=np.float64)])
    idx = np.arange(n)
    lo, hi = np.clip(idx - half, 0, n), np.clip(idx + half + 1, 0, n)
    return (c[hi] - c[lo]) / (hi - lo)[:, None]


def _import_pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        from edge.cli import install_hint

        raise MissingChartDependency(
            f"timeline.png needs matplotlib: {install_hint(CHART_EXTRA)} "
            "(or leave the chart out with --no-chart)") from None
    return plt


def check_chart_dependency() -> None:
    """Raise MissingChartDependency now, before a long run, rather than at its end."""
    _import_pyplot()


def _segment_offsets(log: RunLog) -> np.ndarray:
    """Per segment (index s-1), the shift that puts it after the previous one on the chart's axis."""
    offsets = np.zeros(log.n_segments)
    for s in range(1, log.n_segments):
        prev = log.segment == s
        nxt = log.segment == s + 1
        end = offsets[s - 1] + float(log.t[prev].max() + log.weight_s[prev][-1])
        offsets[s] = end - float(log.t[nxt].min())
    return offsets


def write_timeline_png(log: RunLog, summary: TrackSummary, path: str | Path, config: ReportConfig) -> Path:
    """Per track, stacked smoothed probabilities over time in the overlay's label colours."""
    plt = _import_pyplot()
    path = Path(path)
    labels = log.labels
    colors = [_rgb(x, k) for k, x in enumerate(labels)]
    shown = min(config.top, len(summary))
    offsets = _segment_offsets(log)
    x0 = float(log.t[0] + offsets[log.segment[0] - 1])
    x1 = float(log.t[-1] + offsets[log.segment[-1] - 1] + log.weight_s[-1])
    unit = "image" if log.images else "seconds"
    fig_h = 1.3 + 1.1 * max(shown, 1)
    fig, axes = plt.subplots(max(shown, 1), 1, figsize=(11, fig_h), sharex=True, squeeze=False)
    axes = axes[:, 0]
    if len(summary) == 0:
        axes[0].text(0.5, 0.5, "no face in this run", ha="center", va="center", transform=axes[0].transAxes)
        axes[0].set_yticks([])
    dt = float(np.median(log.weight_s)) or 1.0
    half = int(round(config.smooth_s / dt / 2)) if config.smooth_s > 0 else 0
    for row in range(shown):
        ax = axes[row]
        rows = summary.rows[row]
        fr = log.row_frame[rows]
        x = log.t[fr] + offsets[log.segment[fr] - 1]
        p = log.probs[rows].astype(np.float64)
        # Separate pieces where the face was unseen for longer than max_gap_s: no line across a gap.
        cuts = np.flatnonzero(np.diff(x) > config.max_gap_s) + 1
        for a, b in zip(np.concatenate([[0], cuts]), np.concatenate([cuts, [len(x)]])):
            px, pp = x[a:b], _rolling_mean(p[a:b], half)
            step = max(1, math.ceil(len(px) / _MAX_POINTS))
            px, pp = px[::step], pp[::step]
            if len(px) == 1:  # one frame: a sliver of its own width
                px = np.array([px[0], px[0] + log.weight_s[fr[a]]])
                pp = np.repeat(pp, 2, axis=0)
            ax.stackplot(px, pp.T, colors=colors, linewidth=0)
        ax.set_ylim(0, 1)
        ax.set_yticks([0, 0.5, 1])
        ax.tick_params(axis="y", labelsize=7)
        ax.set_ylabel(summary.name(row), rotation=0, ha="right", va="center", fontsize=10)
        dom = int(summary.dominant[row])
        ax.text(1.005, 0.5, f"{labels[dom]}\n{100 * summary.share[row, dom]:.0f}% of\n"
                f"{summary.seen_s[row]:.1f} {'images' if log.images else 's'}",
                transform=ax.transAxes, fontsize=8, va="center")
        for s in range(2, log.n_segments + 1):  # where an appended run begins
            ax.axvline(float(log.t[log.segment == s].min() + offsets[s - 1]), color="k", lw=0.8, ls="--")
    axes[-1].set_xlim(x0, max(x1, x0 + 1e-3))
    axes[-1].set_xlabel(unit)
    which = (f"all {len(summary)} track{'s' if len(summary) != 1 else ''}" if shown == len(summary)
             else f"top {shown} of {len(summary)} tracks by time on screen")
    smooth = f", smoothed over {config.smooth_s:g} s" if half > 0 else ""
    title = f"{log.path.name}: emotion probabilities per face ({which}{smooth})"
    fig.suptitle(title, fontsize=11)
    handles = [plt.Rectangle((0, 0), 1, 1, color=col) for col in colors]
    if labels:
        fig.legend(handles, labels, loc="upper center", ncol=len(labels), fontsize=8, frameon=False,
                   bbox_to_anchor=(0.5, 1.0 - 0.3 / fig_h))
    # Fixed margins in inches (tight_layout would cost a third of the chart's time).
    fig.subplots_adjust(left=0.8 / 11, right=1.0 - 1.0 / 11, bottom=0.55 / fig_h, top=1.0 - 0.75 / fig_h,
                        hspace=0.12)
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", dpi=100, metadata={"Title": title, "Software": "fer-edge report"})
    finally:
        plt.close(fig)
    return atomic_write_bytes(path, buf.getvalue(), mode=None)

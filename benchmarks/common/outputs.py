"""Where a benchmark's report goes: OUT/<stem>.json, OUT/<stem>.md and, when drawn, OUT/<stem>.png;
and the plots' matplotlib (off-screen) and how a figure is saved."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

from edge.atomic import atomic_write_text


def pyplot(required: bool = True):
    """matplotlib.pyplot on the off-screen Agg backend; without matplotlib, None unless required
    (then the ImportError: the CLI checks `require("matplotlib", "bench")` before measuring)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        if required:
            raise
        return None
    return plt


def save_figure(fig, path: str | Path, dpi: int = 100) -> Path:
    """Lay the figure out, write it as PNG (its folder made if needed) and free it."""
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fig.tight_layout()
        fig.savefig(path, dpi=dpi)
    finally:
        plt.close(fig)
    return path


def write_report_files(out_dir: str | Path, stem: str, report: dict, markdown: str,
                       plot: Callable[[dict, Path], Path | None] | None = None) -> dict[str, Path]:
    """Write the report as JSON and markdown, each file whole, and its plot when `plot(report,
    path)` draws one (it returns None without matplotlib). Returns {"json", "md"[, "png"]}."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / f"{stem}.json", "md": out / f"{stem}.md"}
    atomic_write_text(paths["json"], json.dumps(report, indent=2) + "\n")
    atomic_write_text(paths["md"], markdown)
    png = plot(report, out / f"{stem}.png") if plot is not None else None
    if png is not None:
        paths["png"] = png
    return paths

"""Where a benchmark's report goes: OUT/<stem>.json, OUT/<stem>.md and, when drawn, OUT/<stem>.png."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

from edge.atomic import atomic_write_text


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

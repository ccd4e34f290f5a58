"""A batch's output folder, and the only code that writes into it (the driver's; workers stage).

    DIR/batch.json                 the settings, the command, the engine, the counts
    DIR/index.csv, index.parquet   one row per input of the last run (parquet when pyarrow is there)
    DIR/runs/<name>.jsonl          the records of `fer-edge run --jsonl`
    DIR/runs/<name>.summary.csv    videos: the per-person summary of `fer-edge report`
    DIR/runs/<name>.done.json      written last: the input's sha256, the settings key and its row

<name> is the input's file stem and the first 12 hex digits of its sha256, so two files called
clip.mp4 in different folders get two outputs and one file listed twice gets one. Every file
is written beside its place and renamed (edge.atomic), so a stop at any moment leaves whole
files; an input counts as finished only through its .done.json, so a stop between its files
leaves it unfinished, and the next run does it again and replaces them.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import re
import threading
import time
from pathlib import Path
from typing import Iterable

from edge.atomic import atomic_path, atomic_write_bytes, atomic_write_text
from edge.batch.job import STATUS_OK, Outcome, Settings, Task

RUNS = "runs"
STAGING = ".staging"  # under runs/: files the local engine's workers leave for the driver
DONE = ".done.json"

FIRST_COLUMNS = ("path", "sha256", "kind", "frames", "seconds", "faces", "tracks")
LAST_COLUMNS = ("status", "error", "warnings", "wall_s", "output", "reused")


def output_name(path: str, sha256: str) -> str:
    """runs/<name>.*: the file's stem (kept to safe characters) and 12 hex digits of its sha256."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(path).stem).strip("._") or "input"
    return f"{stem[:80]}-{sha256[:12]}"


def columns(labels: Iterable[str]) -> list[str]:
    return [*FIRST_COLUMNS, *(f"share_{label}" for label in labels), *LAST_COLUMNS]


class BatchDir:
    """The output folder: what is finished, committing an outcome, the index and batch.json."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        self.runs = self.root / RUNS
        self.staging = self.runs / STAGING

    def prepare(self) -> None:
        """Make the folders; clear what workers of a killed run left staged. OSError when the
        place cannot be written."""
        self.staging.mkdir(parents=True, exist_ok=True)
        for stale in self.staging.iterdir():
            if stale.is_file():
                stale.unlink(missing_ok=True)
        for stale in self.runs.glob(".*.tmp*"):  # atomic_path's temporaries, when a crash beat their cleanup
            stale.unlink(missing_ok=True)

    def finished(self, task: Task, settings_key: str) -> dict | None:
        """The row of an earlier run of this input with these settings, when its files are all there."""
        done = self.runs / f"{task.name}{DONE}"
        try:
            marker = json.loads(done.read_text())
        except (OSError, ValueError):
            return None
        if (not isinstance(marker, dict) or marker.get("sha256") != task.sha256
                or marker.get("settings") != settings_key or not isinstance(marker.get("row"), dict)):
            return None
        if not all((self.runs / f"{task.name}{suffix}").is_file() for suffix in marker.get("files", ())):
            return None
        return marker["row"]

    def commit(self, outcome: Outcome, settings_key: str) -> dict:
        """Move a finished input's files into runs/ and write its .done.json last; its row."""
        task = outcome.task
        for suffix, content in outcome.files.items():
            target = self.runs / f"{task.name}{suffix}"
            if isinstance(content, bytes):
                atomic_write_bytes(target, content)
            else:
                os.chmod(content, 0o644)
                os.replace(content, target)
        row = {**outcome.row, "status": STATUS_OK}
        marker = {"path": task.path, "sha256": task.sha256, "settings": settings_key, "files": sorted(outcome.files),
                  "row": row, "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        atomic_write_text(self.runs / f"{task.name}{DONE}", json.dumps(marker, indent=1) + "\n")
        outcome.files = {}
        return row

    def write_index(self, rows: list[dict], labels: Iterable[str]) -> list[Path]:
        """index.csv, and index.parquet when pyarrow is installed; the files written."""
        cols = columns(labels)
        table = [[_cell(row.get(c)) for c in cols] for row in rows]
        with atomic_path(self.root / "index.csv") as tmp:
            with open(tmp, "w", encoding="utf-8", newline="") as f:
                w = csv.writer(f, lineterminator="\n")
                w.writerow(cols)
                w.writerows(table)
        os.chmod(self.root / "index.csv", 0o644)
        written = [self.root / "index.csv"]
        parquet = _write_parquet(self.root / "index.parquet", rows, cols)
        if parquet is not None:
            written.append(parquet)
        return written

    def write_batch_json(self, description: dict) -> Path:
        return atomic_write_text(self.root / "batch.json", json.dumps(description, indent=2) + "\n")


def _cell(value):
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


_TYPES = {"frames": "int64", "faces": "int64", "tracks": "int64", "seconds": "float64", "wall_s": "float64",
          "reused": "bool"}


def warm_index_writer() -> threading.Thread | None:
    """Import what index.parquet needs on a daemon thread; None without pyarrow. pyarrow's first
    table also imports pandas, which a batch would otherwise wait for after its last input: the
    driver calls this once a worker has no input left, on the core that worker no longer uses."""
    if importlib.util.find_spec("pyarrow") is None:
        return None

    def warm() -> None:
        try:
            import pyarrow as pa
            import pyarrow.parquet  # noqa: F401

            pa.array([0])  # the first array is what imports pandas
        except Exception:  # a broken pyarrow: write_index reports it, as it would have
            pass

    thread = threading.Thread(target=warm, name="fer-edge-index-warm", daemon=True)
    thread.start()
    return thread


def _write_parquet(path: Path, rows: list[dict], cols: list[str]) -> Path | None:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        return None
    fields = []
    for c in cols:
        kind = _TYPES.get(c, "float64" if c.startswith("share_") else "string")
        fields.append(pa.field(c, {"int64": pa.int64(), "float64": pa.float64(), "bool": pa.bool_(),
                                   "string": pa.string()}[kind]))
    schema = pa.schema(fields)
    data = {c: [_typed(row.get(c), schema.field(c).type, pa) for row in rows] for c in cols}
    with atomic_path(path) as tmp:
        pq.write_table(pa.table(data, schema=schema), tmp)
    os.chmod(path, 0o644)
    return path


def _typed(value, kind, pa):
    if value is None or value == "":
        return None if kind != pa.string() else ("" if value == "" else None)
    if kind == pa.string():
        return str(value)
    return value


def task_row(task: Task) -> dict:
    """The columns every row has, whatever became of the input."""
    return {"path": task.path, "sha256": task.sha256, "kind": task.kind, "output": f"{RUNS}/{task.name}.jsonl"}


def settings_description(settings: Settings) -> dict:
    return settings.describe() | {"settings_key": settings.key}

"""`fer-edge batch INPUT... --out DIR`: every video and photo of a corpus, locally or on a Ray cluster.

The driver expands the inputs, hashes them, skips those already finished with these settings,
hands the rest to an engine in chunks (a video alone, photos PHOTOS_PER_CHUNK at a time) and
commits each outcome as it comes back (edge.batch.store). SIGINT and SIGTERM set one stop Event:
no new input starts, the ones in progress are dropped whole, every finished one stays, and the
index and batch.json say what was done; the same command later does the rest.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import signal
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

from edge.batch.inputs import Input, InputError, expand
from edge.batch.job import STATUS_ERROR, STATUS_INTERRUPTED, STATUS_OK, Outcome, Settings, Task
from edge.batch.store import BatchDir, output_name, settings_description, task_row, warm_index_writer
from edge.cli import CliError, HelpFormatter, StopOnSignals, command_line

log = logging.getLogger(__name__)

PHOTOS_PER_CHUNK = 8
INDEX_EVERY_S = 30.0  # the index is rewritten this often during a long batch, and at its end
STATUS_PENDING = "not started"
LISTED_FAILURES = 10


def register(sub) -> None:
    from edge.cli.pipeline_flags import add_pipeline_args

    p = sub.add_parser(
        "batch", help="analyse many videos and photos into per-input JSON Lines and one index (locally or on Ray)",
        formatter_class=HelpFormatter,
        description="Run every video and photo of INPUT through the pipeline, as `fer-edge run --jsonl` would, in\n"
        "parallel. DIR gets runs/<name>.jsonl per input (and <name>.summary.csv, the per-person summary, for\n"
        "videos), index.csv (index.parquet with pyarrow) with one row per input, and batch.json with the\n"
        "settings. Inputs already finished with the same settings are skipped, so an interrupted batch is\n"
        "finished by running the same command again. Exit status: 0 all done, 1 some inputs failed (see the\n"
        "index's status and error columns), 2 a usage error, 128+N stopped by signal N.",
        epilog="examples:\n  fer-edge batch interviews/ --out results/\n"
        "  fer-edge batch 'archive/**/*.mp4' photos/ @more.txt --out results/\n"
        "  ray start --head; fer-edge batch /mnt/shared/clips --out /mnt/shared/results --engine ray --address auto",
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="a video or image file, a folder (walked recursively; videos and images are told by their "
                   "content), a quoted glob ('clips/**/*.mp4'), or @list.txt with one of those per line")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="output folder (made if its parent exists; an earlier batch's folder is resumed)")
    e = p.add_argument_group("engine")
    e.add_argument("--engine", choices=("local", "ray"), default="local",
                   help="local: a process pool on this machine; ray: Ray tasks on a Ray cluster (the [scale] extra)")
    e.add_argument("--jobs", type=int, default=None,
                   help="worker processes (local) or CPUs of the Ray this command starts (default: this machine's cores)")
    e.add_argument("--address", default=None,
                   help="--engine ray: the cluster, 'auto' (one started with `ray start` here) or ray://HOST:10001 "
                   "(default: start a Ray of this machine's cores for the batch)")
    e.add_argument("--retries", type=int, default=3,
                   help="--engine ray: times a task is run again when its worker or node dies")
    e.add_argument("--force", action="store_true", help="analyse every input again, even those already finished")
    add_pipeline_args(p.add_argument_group("models"), groups=("detector", "model"))
    r = p.add_argument_group("runtime")
    add_pipeline_args(r, groups=("runtime", "tracking"), skip=("--workers",))
    p.set_defaults(func=_cmd_batch)


def batch_pipeline(args: argparse.Namespace):
    """The PipelineConfig every worker runs for these parsed `fer-edge batch` arguments: one
    frame-loop thread, and one interpreter thread unless --threads says otherwise, because the
    pool's workers already fill the cores."""
    from edge.cli.pipeline_flags import config_from_args

    pipeline = config_from_args(args, workers=1)
    return pipeline if pipeline.threads is not None else replace(pipeline, threads=1)


def _cmd_batch(args: argparse.Namespace) -> int:
    pipeline = batch_pipeline(args)
    if args.jobs is not None and args.jobs < 1:
        raise CliError("--jobs must be >= 1")
    if args.retries < 0:
        raise CliError("--retries must be >= 0")
    if args.address and args.engine != "ray":
        raise CliError("--address names a Ray cluster: add --engine ray")
    if args.engine == "ray":
        from edge.cli import install_hint

        try:
            import ray  # noqa: F401
        except ImportError:
            raise CliError(f"--engine ray needs Ray: {install_hint('scale')}") from None
    return run_batch(args.inputs, args.out, pipeline, engine=args.engine, jobs=args.jobs, address=args.address,
                     retries=args.retries, force=args.force)


def _settings(pipeline) -> Settings:
    from edge.models.registry import ModelNotFoundError
    from edge.classify.sidecar import SidecarError

    try:
        return Settings.resolve(pipeline)
    except ModelNotFoundError as exc:
        raise CliError(str(exc)) from None
    except SidecarError as exc:
        raise CliError(f"model sidecar does not fit: {exc}") from None
    except OSError as exc:
        raise CliError(f"cannot read the models: {exc}") from None


def _out_dir(out: str) -> BatchDir:
    store = BatchDir(out)
    try:
        store.prepare()
    except OSError as exc:
        raise CliError(f"--out {out}: cannot write there: {exc.strerror or exc}") from None
    return store


def _hash(found: Input) -> Task:
    from edge.atomic import sha256_file

    sha = ""
    kind = found.kind
    if kind != "missing":
        try:
            sha = sha256_file(found.path)
        except OSError:
            kind = "missing"
    digest = sha or hashlib.sha256(found.path.encode()).hexdigest()  # a name for a row with no output
    return Task(found.path, kind, sha, output_name(found.path, digest))


def hash_inputs(found: list[Input]) -> list[Task]:
    """A Task per expanded input: its content's sha256 and its output name (a gone file: `missing`)."""
    from tqdm import tqdm

    with ThreadPoolExecutor(max_workers=4) as pool:  # hashing reads files; hashlib releases the GIL
        return list(tqdm(pool.map(_hash, found), total=len(found), desc="hashing", unit="file", leave=False,
                         disable=len(found) < 200 or None, file=sys.stderr))


def _largest_first(tasks: list[Task]) -> list[Task]:
    """Videos by file size, largest first, then the photos: the longest inputs start while every
    worker is busy, and the short ones fill the end, where a long video started last would leave
    the other workers idle. The index keeps the input order."""
    def size(task: Task) -> int:
        try:
            return os.stat(task.path).st_size
        except OSError:  # gone: its error row comes when it is reached
            return 0

    videos = [t for t in tasks if t.kind != "image"]
    return sorted(videos, key=size, reverse=True) + [t for t in tasks if t.kind == "image"]


def _chunks(tasks: list[Task]):
    photos: list[Task] = []
    for task in tasks:
        if task.kind == "image":
            photos.append(task)
            if len(photos) == PHOTOS_PER_CHUNK:
                yield photos
                photos = []
        else:
            yield [task]
    if photos:
        yield photos


def run_batch(inputs: list[str], out: str, pipeline, *, engine: str = "local", jobs: int | None = None,
              address: str | None = None, retries: int = 3, force: bool = False) -> int:
    """The batch; its exit status (0 all done, 1 some failed, 128+N stopped by signal N)."""
    from edge.outputs.paths import check_output_path

    check_output_path("--out", out, folder=True)
    try:
        found = expand(inputs, skip=[out])
    except InputError as exc:
        raise CliError(str(exc)) from None
    if not found:
        raise CliError("no videos or images in " + " ".join(inputs))
    settings = _settings(pipeline)
    store = _out_dir(out)  # made only once the inputs and the models are known to be there
    key = settings.key
    tasks = hash_inputs(found)
    rows: dict[str, dict] = {}  # by output name: one run per content, however often it is listed
    todo: list[Task] = []
    for task in tasks:
        if task.name in rows:
            continue
        earlier = None if force or not task.sha256 else store.finished(task, key)
        if earlier is not None:
            rows[task.name] = {**earlier, "reused": True}
        else:
            rows[task.name] = {"kind": task.kind, "status": STATUS_PENDING}
            todo.append(task)
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    description = {"command": command_line(), "engine": engine, "address": address, "inputs": len(found),
                   "settings": settings_description(settings), "started": started, "status": "running"}
    store.write_batch_json(description)
    stop = threading.Event()
    progress = _Progress(len(todo), len(tasks) - len(todo))
    last_index = time.monotonic()
    chunks = list(_chunks(_largest_first(todo)))
    chunks_left = len(chunks)
    workers = 0  # the engine's capacity, once it has started
    warmed = False

    def on_done(outcomes: list[Outcome]) -> None:
        nonlocal last_index, chunks_left, warmed
        chunks_left -= 1
        if not warmed and chunks_left < workers:  # a worker has nothing left: its core is free
            warm_index_writer()
            warmed = True
        for o in outcomes:
            if o.status == STATUS_OK:
                rows[o.task.name] = {**store.commit(o, key), "reused": False}
            else:
                o.discard()
                rows[o.task.name] = {**o.row, "status": o.status, "reused": False}
        progress.done(outcomes)
        if time.monotonic() - last_index > INDEX_EVERY_S:
            store.write_index(_index_rows(tasks, rows), settings.labels)
            last_index = time.monotonic()

    signals = StopOnSignals(stop)
    try:
        if todo:
            with _engine(engine, settings, store, jobs, address, retries) as runner, signals:
                workers = runner.capacity
                runner.run(chunks, on_done, stop)
    finally:
        progress.close()
        index = store.write_index(_index_rows(tasks, rows), settings.labels)
        counts = _counts(rows.values())
        status = "stopped" if stop.is_set() else "finished"
        store.write_batch_json(description | {"status": status, "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                                              "counts": counts, "outputs": len(rows)})
    return _report(rows, tasks, counts, index, stop, signals.signum, progress)


def _engine(name: str, settings: Settings, store: BatchDir, jobs, address, retries):
    if name == "ray":
        from edge.batch.engines import RayEngine

        return RayEngine(settings, address=address, retries=retries, jobs=jobs)
    from edge.batch.engines import LocalEngine

    return LocalEngine(settings, store.staging, jobs=jobs)


def _index_rows(tasks: list[Task], rows: dict[str, dict]) -> list[dict]:
    """One row per listed input, in input order (a duplicate shares its content's outcome)."""
    out = []
    for task in tasks:
        row = rows[task.name]
        out.append({**row, **task_row(task), "kind": row.get("kind", task.kind)})
        if row.get("status") != STATUS_OK:
            out[-1]["output"] = ""
    return out


def _counts(rows) -> dict:
    counts = {"ok": 0, "reused": 0, "error": 0, "interrupted": 0, "not_started": 0}
    for row in rows:
        status = row.get("status")
        if status == STATUS_OK:
            counts["reused" if row.get("reused") else "ok"] += 1
        elif status == STATUS_ERROR:
            counts["error"] += 1
        elif status == STATUS_INTERRUPTED:
            counts["interrupted"] += 1
        else:
            counts["not_started"] += 1
    return counts


class _Progress:
    """A tqdm bar over the inputs to analyse, with frames/s over all workers and the ETA."""

    def __init__(self, total: int, reused: int):
        from tqdm import tqdm

        self.frames = 0
        self.failed = 0
        self.t0 = time.perf_counter()
        self.bar = tqdm(total=total, desc="batch", unit="input", file=sys.stderr, dynamic_ncols=True,
                        disable=None if total else True, smoothing=0.1,
                        postfix=f"{reused} already done" if reused else None)

    def done(self, outcomes: list[Outcome]) -> None:
        self.frames += sum(int(o.row.get("frames") or 0) for o in outcomes if o.status == STATUS_OK)
        rate = self.frames / max(time.perf_counter() - self.t0, 1e-6)
        self.failed += sum(o.status == STATUS_ERROR for o in outcomes)
        self.bar.set_postfix_str(f"{rate:.0f} frames/s" + (f", {self.failed} failed" if self.failed else ""),
                                 refresh=False)
        self.bar.update(len(outcomes))

    @property
    def wall_s(self) -> float:
        return time.perf_counter() - self.t0

    def close(self) -> None:
        self.bar.close()


def _report(rows: dict[str, dict], tasks: list[Task], counts: dict, index, stop, signum, progress) -> int:
    n = len(tasks)
    done = counts["ok"] + counts["reused"]
    parts = [f"{done} of {len(rows)} done" + (f" ({counts['reused']} from an earlier run)" if counts["reused"] else "")]
    if counts["error"]:
        parts.append(f"{counts['error']} failed")
    left = counts["interrupted"] + counts["not_started"]
    if left:
        parts.append(f"{left} not done")
    rate = f", {progress.frames / progress.wall_s:.1f} frames/s" if progress.frames else ""
    dupes = f" ({n - len(rows)} listed twice)" if n > len(rows) else ""
    print(f"{n} inputs{dupes}: " + ", ".join(parts) + f" in {progress.wall_s:.1f} s{rate}. Index: "
          + ", ".join(str(p) for p in index), file=sys.stderr)
    failures = [(t.path, rows[t.name].get("error", "")) for t in tasks if rows[t.name].get("status") == STATUS_ERROR]
    for path, error in failures[:LISTED_FAILURES]:
        print(f"  failed: {path}: {error}", file=sys.stderr)
    if len(failures) > LISTED_FAILURES:
        print(f"  ... and {len(failures) - LISTED_FAILURES} more (status 'error' in the index)", file=sys.stderr)
    if stop.is_set():
        print("stopped: the finished inputs are kept; run the same command again to do the rest", file=sys.stderr)
        return 128 + int(signum or signal.SIGINT)
    return 1 if failures else 0

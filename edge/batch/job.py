"""The settings of a batch, and `analyse`: the one per-input function that every engine runs.

`analyse(tasks, settings)` runs each input through `edge.cli.run.run` (the `fer-edge run` frame
loop and its JsonlSink: the same records as `fer-edge run --jsonl`), then reads the records
back with edge.report (read, summary) for the index row and, for a video, the per-person summary that
`fer-edge report` writes (summary.csv). A worker process loads the models once: each video gets
a fresh pipeline over them (a new tracker, the detector reset), so its records are exactly those
of a `fer-edge run` of that file (track ids from 1, the detector's schedule from its start);
photos share one pipeline, each a fresh still, as in a `fer-edge run` over a folder.

Settings travel with a job: `Settings.resolve` finds the model files the driver would use and
hashes them; `Settings.packed()` carries their bytes, and a worker on another machine writes
them once into its cache (`Settings.unpacked`), so it needs only fer-edge installed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Sequence

from edge.atomic import atomic_write_bytes, sha256_file
from edge.pipeline import PipelineConfig

# Raised whenever the output files of one input change in form (not in content).
BATCH_FORMAT = 1
# PipelineConfig fields that change how fast, not what: left out of the settings key.
SPEED_ONLY = ("threads", "workers")
MAX_WARNINGS = 3  # per input, in the index's warnings column

STATUS_OK, STATUS_ERROR, STATUS_INTERRUPTED = "ok", "error", "interrupted"


@dataclass(frozen=True)
class ModelFile:
    role: str  # emotion | sidecar | detector
    path: str  # where this process finds it
    sha256: str
    data: bytes | None = field(default=None, repr=False)  # the file itself, while it travels


@dataclass(frozen=True)
class Settings:
    """What decides an input's records: the pipeline settings and the exact model files."""

    pipeline: PipelineConfig  # emotion_model and detector.model_path are the resolved paths
    models: tuple[ModelFile, ...]
    labels: tuple[str, ...]
    version: str

    @classmethod
    def resolve(cls, pipeline: PipelineConfig) -> "Settings":
        """The model files `pipeline` would load, found and hashed. Raises ModelNotFoundError,
        SidecarError or OSError (the CLI words them)."""
        from edge import __version__
        from edge.models.registry import default_emotion_model, resolve_detector_model
        from edge.classify.sidecar import load_sidecar, sidecar_path

        emotion = Path(pipeline.emotion_model) if pipeline.emotion_model else default_emotion_model()
        card = load_sidecar(emotion)
        files = [("emotion", emotion), ("sidecar", sidecar_path(emotion))]
        detector = None
        if pipeline.detector.backend == "blazeface":
            detector = resolve_detector_model(pipeline.detector.range, pipeline.detector.model_path)
            files.append(("detector", detector))
        models = tuple(ModelFile(role, str(p.resolve()), sha256_file(p)) for role, p in files)
        resolved = pipeline.replace(emotion_model=str(emotion.resolve()),
                                    model_path=str(detector.resolve()) if detector is not None else
                                    pipeline.detector.model_path)
        return cls(resolved, models, tuple(card.labels), __version__)

    def describe(self) -> dict:
        """The JSON of batch.json's settings: every pipeline field, the models and their sha256."""
        return {"pipeline": asdict(self.pipeline), "labels": list(self.labels), "fer_edge": self.version,
                "batch_format": BATCH_FORMAT,
                "models": {m.role: {"path": m.path, "sha256": m.sha256} for m in self.models}}

    @property
    def key(self) -> str:
        """The sha256 of everything that decides the records (not the paths, not the speed knobs)."""
        settings = asdict(self.pipeline)
        del settings["detector"]["model_path"]
        pipeline = {k: v for k, v in settings.items() if k not in SPEED_ONLY + ("emotion_model",)}
        text = json.dumps({"pipeline": pipeline, "models": {m.role: m.sha256 for m in self.models},
                           "fer_edge": self.version, "batch_format": BATCH_FORMAT}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()

    def packed(self) -> "Settings":
        """These settings with the model files' bytes inside, for workers without the files."""
        return replace(self, models=tuple(replace(m, data=Path(m.path).read_bytes()) for m in self.models))

    def unpacked(self, cache_dir: str | os.PathLike | None = None) -> "Settings":
        """Settings whose model paths are local copies of the carried bytes (written once per
        sha256 into cache_dir, default $XDG_CACHE_HOME/fer-edge/batch-models, beside the detector
        cache); as they are when no bytes came."""
        if not any(m.data is not None for m in self.models):
            return self
        from edge.models.registry import cache_dir as model_cache

        root = Path(cache_dir) if cache_dir else model_cache().parent / "batch-models"
        paths: dict[str, str] = {}
        for m in self.models:
            if m.data is None:
                paths[m.role] = m.path
                continue
            folder = root / (m.sha256 if m.role != "sidecar" else _emotion_sha(self.models))
            target = folder / Path(m.path).name
            if not (target.is_file() and target.stat().st_size == len(m.data)):
                folder.mkdir(parents=True, exist_ok=True)
                atomic_write_bytes(target, m.data)
            paths[m.role] = str(target)
        # The sidecar must sit beside its model under the same stem: both go in the model's folder.
        pipeline = self.pipeline.replace(emotion_model=paths["emotion"],
                                         model_path=paths.get("detector", self.pipeline.detector.model_path))
        return replace(self, pipeline=pipeline,
                       models=tuple(replace(m, path=paths[m.role], data=None) for m in self.models))


def _emotion_sha(models: Sequence[ModelFile]) -> str:
    return next(m.sha256 for m in models if m.role == "emotion")


@dataclass(frozen=True, slots=True)
class Task:
    path: str
    kind: str  # video | image | unknown (tried as a video) | missing (edge.batch.inputs)
    sha256: str
    name: str  # the output's stem under runs/


@dataclass
class Outcome:
    """What one input came to. files: output suffix -> a staged file on the output's
    filesystem (local engine) or its bytes (Ray), committed by the driver (edge.batch.store)."""

    task: Task
    status: str  # ok | error | interrupted
    row: dict  # kind, frames, seconds, faces, tracks, share_<label>..., error, warnings, wall_s
    files: dict[str, str | bytes] = field(default_factory=dict)

    def discard(self) -> None:
        """Remove staged files that will not be committed."""
        for f in self.files.values():
            if isinstance(f, str):
                Path(f).unlink(missing_ok=True)
        self.files = {}


class _Warnings(logging.Handler):
    """The runtime's warnings about one input (a video cut short), for its index row. Being a
    handler on the `edge` logger, it also keeps them off a worker's console."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if len(self.messages) < MAX_WARNINGS:
            self.messages.append(record.getMessage())


_worker_pipeline: tuple[str, object] | None = None  # (settings key, Pipeline) of this worker process


def _shared_pipeline(settings: Settings):
    """This worker's pipeline for `settings`, its models loaded on first use only: loading them
    (interpreters, XNNPACK's weight packing, one per detector window shape) costs a short video
    a good part of its own analysis."""
    global _worker_pipeline
    from edge.cli.pipeline_flags import open_pipeline

    if _worker_pipeline is None or _worker_pipeline[0] != settings.key:
        if _worker_pipeline is not None:
            _worker_pipeline[1].close()
        _worker_pipeline = (settings.key, open_pipeline(settings.pipeline))
    return _worker_pipeline[1]


def _video_pipeline(settings: Settings):
    """A pipeline for a new video over this worker's loaded models: its own tracker (ids from 1),
    the detector reset (no remembered faces, a full scan first). It is not closed after the video:
    the models are the worker's."""
    from edge.pipeline import Pipeline

    shared = _shared_pipeline(settings)
    shared.detector.reset()
    return Pipeline(shared.config, shared.detector, shared.classifier)


def analyse(tasks: Sequence[Task], settings: Settings, *, staging: str | None = None,
            stop: threading.Event | None = None) -> list[Outcome]:
    """Run each task; one Outcome per task, in order. staging: a folder on the output's
    filesystem for the files (the local engine); None: files come back as bytes (Ray). Once
    `stop` is set, the input in progress and the rest are `interrupted`, with no files."""
    stop = stop if stop is not None else threading.Event()
    settings = settings.unpacked()
    out: list[Outcome] = []
    with tempfile.TemporaryDirectory(prefix="fer-edge-batch-") if staging is None else _Folder(staging) as folder:
        for task in tasks:
            if stop.is_set():
                out.append(Outcome(task, STATUS_INTERRUPTED, {"kind": task.kind}))
                continue
            outcome = _one(task, settings, Path(folder), stop)
            if staging is None:
                outcome.files = {k: _take(v) for k, v in outcome.files.items()}
            out.append(outcome)
    return out


class _Folder:
    def __init__(self, path: str):
        self.path = path

    def __enter__(self) -> str:
        return self.path

    def __exit__(self, *exc) -> None:
        pass


def _take(path: str | bytes) -> bytes:
    if isinstance(path, bytes):
        return path
    try:
        return Path(path).read_bytes()
    finally:
        Path(path).unlink(missing_ok=True)


def _one(task: Task, settings: Settings, folder: Path, stop) -> Outcome:
    from edge.cli import CliError
    from edge.report.read import ReportError

    t0 = time.perf_counter()
    stem = folder / f"{task.name}.{os.getpid()}.{secrets.token_hex(4)}"
    outcome = Outcome(task, STATUS_ERROR, {"kind": task.kind})
    warnings = _Warnings()
    edge_log = logging.getLogger("edge")
    edge_log.addHandler(warnings)
    try:
        if task.kind == "missing":
            raise CliError("the file is gone or cannot be read")
        outcome = _run(task, settings, stem, stop)
    except (CliError, ReportError, OSError, ValueError) as exc:
        outcome.row["error"] = str(exc)
    except Exception as exc:  # a bug or a library's failure on one odd file: that input's row says so
        outcome.row["error"] = f"{type(exc).__name__}: {exc}"
    except BaseException:  # KeyboardInterrupt (a cancelled Ray task): nothing of this input stays
        outcome.discard()
        for suffix in (".jsonl", ".summary.csv"):
            Path(f"{stem}{suffix}").unlink(missing_ok=True)
        raise
    finally:
        edge_log.removeHandler(warnings)
    if outcome.status != STATUS_OK:
        outcome.discard()
        Path(f"{stem}.jsonl").unlink(missing_ok=True)
    outcome.row["warnings"] = "; ".join(warnings.messages)
    outcome.row["wall_s"] = round(time.perf_counter() - t0, 3)
    return outcome


def _run(task: Task, settings: Settings, stem: Path, stop) -> Outcome:
    from edge.capture.source import SourceSpec
    from edge.cli import CliError
    from edge.report.read import read_run
    from edge.report.summary import label_shares, summarize, write_summary_csv
    from edge.cli.run import RunConfig, run
    from edge.loop import RunSummary

    image = task.kind == "image"
    spec = SourceSpec("image", task.path, (task.path,)) if image else SourceSpec("video", task.path)
    jsonl = Path(f"{stem}.jsonl")
    config = RunConfig(source=task.path, pipeline=settings.pipeline, headless=True, jsonl=str(jsonl),
                       stats_interval_s=0.0)
    summary = RunSummary()
    try:
        run(config, stop, summary=summary, spec=spec,
            pipeline=_shared_pipeline(settings) if image else _video_pipeline(settings), quiet=True)
    except CliError as exc:
        if task.kind == "unknown":
            raise CliError(f"neither a video nor an image that OpenCV can read ({exc})") from None
        raise
    kind = "image" if image else "video"
    if stop.is_set():
        jsonl.unlink(missing_ok=True)
        return Outcome(task, STATUS_INTERRUPTED, {"kind": kind})
    if summary.frames == 0:
        jsonl.unlink(missing_ok=True)
        raise CliError("not a readable image (OpenCV cannot decode it)" if image
                       else "no frame could be decoded (an empty or damaged video)")
    log = read_run(jsonl)
    shares = dict(zip(log.labels, label_shares(log).tolist()))
    row = {"kind": kind, "frames": log.n_frames, "seconds": None, "faces": log.n_faces, "tracks": None,
           **{f"share_{label}": round(shares.get(label, 0.0), 4) for label in settings.labels}, "error": ""}
    files: dict[str, str | bytes] = {".jsonl": str(jsonl)}
    if not image:
        tracks = summarize(log)
        row["seconds"] = round(float(log.weight_s.sum()), 3)
        row["tracks"] = len(tracks)
        files[".summary.csv"] = str(write_summary_csv(tracks, f"{stem}.summary.csv"))
    return Outcome(task, STATUS_OK, row, files)

"""The pipeline benchmark: the real pipeline on a video file or a camera, timed per stage.

    report = run_pipeline_bench("video.mp4", frames=300)
    report["fps"], report["latency_ms"]["p95"], report["stages"]["detect"]["p50"]

Frames are read synchronously from OpenCV so that decoding (or capture) is timed as its own
stage; then `Pipeline.process` (detect, preprocess, classify, track, with its own timings) and
the overlay (`edge.outputs.overlay.draw`) run on each frame. End-to-end latency per frame is
decode + process + draw, on the monotonic `time.perf_counter`. The first `warmup` frames are
run but not counted (interpreter warm-up, first allocations). A video shorter than the
requested frame count is rewound and played again (tracks are reset at each rewind), so the
same short file serves a 10,000-frame soak.

CPU % is the process's user + system CPU time over the wall time of the counted frames (100 %
= one core busy); RSS is sampled after every frame. When the peer (`fer`) is installed it runs
on the same frames in the same process right after ours (see benchmarks/common/peer.py).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import psutil

from benchmarks.common.outputs import pyplot, save_figure
from benchmarks.common.samples import RunSamples, run_interleaved, samples_report
from edge.capture.readers import CvReader
from edge.machine import machine_info
from edge.pipeline import PipelineConfig
from edge.cli.pipeline_flags import flag_settings

log = logging.getLogger(__name__)

SCHEMA = "fer-edge-bench/1"


class BenchError(RuntimeError):
    """A benchmark that cannot run (source will not open, no frames); says what to do."""


def model_info(model_path: str | os.PathLike | None) -> dict:
    """The emotion model's path, quantization and whether its sidecar says it is provisional."""
    from edge.models.registry import default_emotion_model
    from edge.classify.sidecar import load_sidecar

    path = Path(model_path) if model_path else default_emotion_model()
    info: dict = {"path": str(path)}
    try:
        card = load_sidecar(path)
        info.update(quantization=card.quantization, metrics=card.metrics,
                    provisional="PROVISIONAL" in json.dumps(card.metrics).upper(),
                    size_kb=round(path.stat().st_size / 1024, 1))
    except (OSError, ValueError) as exc:  # reported, not fatal: the pipeline says the real error
        info["error"] = str(exc)
    return info


# ----------------------------------------------------------------------------- frame source

class FrameReader:
    """Synchronous reader of a video file or a camera index (edge.capture.readers.CvReader on the
    caller's thread, so that decoding is timed as its own stage); rewinds a file at its end.

    `read()` -> (H, W, 3) uint8 BGR, or None when a camera stops or a file has no frames at all.
    `rewinds` counts how often the file was played again.
    """

    def __init__(self, source: str, loop: bool = True, width: int | None = None, height: int | None = None):
        self.source = str(source)
        self.camera = self.source.isdigit()
        if not self.camera and not Path(self.source).is_file():
            raise BenchError(f"{self.source}: no such video file (or pass a camera index such as 0)")
        self.loop = loop and not self.camera
        self.width, self.height = width, height
        self.rewinds = 0
        self._reader: CvReader | None = None
        self._open()

    def _open(self) -> None:
        try:
            self._reader = CvReader(self.source, live=self.camera, width=self.width, height=self.height)
        except OSError:
            raise BenchError(f"{self.source}: OpenCV cannot open this source "
                             "(check the path, the codec, or the camera index)") from None

    def _grab(self):
        try:
            grab = self._reader.read()
        except OSError:  # a camera that stopped delivering
            return None
        return None if grab is None else grab.image

    def read(self):
        image = self._grab()
        if image is not None or not self.loop:
            return image
        # End of the file: reopen (more reliable than seeking across codecs) and go on.
        self._reader.close()
        self._open()
        self.rewinds += 1
        return self._grab()

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    def __enter__(self) -> "FrameReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# ----------------------------------------------------------------------------- the run

class ReaderSource:
    """A FrameReader as the runtime's frame source (`read(after, timeout_s)` -> Frame), for the
    two-thread driver: it notes when each frame's decoding started and how long it took, and
    which frames start the file again (fresh streams for the detector and the tracker)."""

    def __init__(self, reader: FrameReader):
        self.reader = reader
        self.live = reader.camera  # the frame loop keeps fewer frames in flight for a camera (DetectAhead)
        self._index = 0
        self._rewinds = reader.rewinds
        self._lock = threading.Lock()
        self._timing: dict[int, tuple[float, float]] = {}  # index -> (t_start, decode_ms); popped when used
        self._fresh: set[int] = set()  # popped when used

    def read(self, after: int = -1, timeout_s: float | None = None):
        from edge.capture.thread import EndOfStream
        from edge.types import Frame

        t0 = time.perf_counter()
        image = self.reader.read()
        t1 = time.perf_counter()
        if image is None:
            raise EndOfStream
        index = self._index
        self._index += 1
        with self._lock:
            self._timing[index] = (t0, (t1 - t0) * 1e3)
            if self.reader.rewinds != self._rewinds:
                self._rewinds = self.reader.rewinds
                self._fresh.add(index)
        return Frame(image=image, index=index, t=0.0)

    def fresh(self, frame) -> bool:
        with self._lock:
            if frame.index in self._fresh:
                self._fresh.discard(frame.index)
                return True
            return False

    def timing(self, index: int) -> tuple[float, float]:
        """(perf_counter when decoding started, decode ms) of a frame, once."""
        with self._lock:
            return self._timing.pop(index)


class PipelineSide:
    """fer-edge on one reader: `step()` measures one frame (decode, pipeline stages, draw).

    workers=2 detects the next frame on a second thread while this one is classified, tracked
    and drawn (edge.pipeline.DetectAhead); the frame's latency then runs from the start of its
    decoding to the end of its drawing. workers None: the pipeline config's (else the runtime's
    default). Call `close()` (or use it as a context manager).
    """

    name = "fer-edge"

    def __init__(self, reader: FrameReader, pipeline, draw: bool = True, capacity: int = 4096,
                 workers: int | None = None):
        from edge.outputs.overlay import draw as draw_overlay
        from edge.pipeline import DEFAULT_WORKERS, stages

        self.reader, self.pipeline = reader, pipeline
        if workers is None:
            workers = pipeline.config.workers if pipeline.config.workers is not None else DEFAULT_WORKERS
        self.workers = workers
        self.draw_fn = draw_overlay if draw else None
        self.samples = RunSamples(capacity=capacity)
        if self.draw_fn is None:
            self.samples.stages_ms.pop("draw")
        self._rewinds = reader.rewinds
        self._fps_shown = None
        self._source = None
        self._stages = None
        # While another side runs its block, a frame of ours may wait, decoded, in the pipeline.
        # That wait is not our latency: (when the last pause began, its length in s).
        self._pause_began: float | None = None
        self._pause = (math.inf, 0.0)
        if self.workers != 1:
            self._source = ReaderSource(reader)
            self._stages = stages(pipeline, self._source, self.workers, fresh=self._source.fresh).__enter__()

    def __enter__(self) -> "PipelineSide":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._stages is not None:
            self._stages.close()
            self._stages = None

    def settle(self) -> None:
        """No detection of ours runs ahead while another side is measured."""
        if self._stages is not None:
            self._stages.settle()
            self._pause_began = time.perf_counter()

    def _next_threaded(self):
        from edge.capture.thread import EndOfStream

        try:
            return self._stages.next(timeout_s=60.0)
        except EndOfStream:
            return None

    def warmup(self, n: int) -> None:
        for _ in range(n):
            if self._stages is not None:
                result = self._next_threaded()
                if result is None:
                    return
                self._source.timing(result.frame.index)
                image = result.frame.image
            else:
                image = self.reader.read()
                if image is None:
                    return
                result = self.pipeline.process(image)
            if self.draw_fn is not None:
                self.draw_fn(image, result, copy=False)
        # The frames our worker has in flight wait while the peer warms up (seconds, as it loads
        # TensorFlow): a pause, like the peer's blocks, not our latency.
        self.settle()

    def step(self) -> bool:
        """One counted frame; False when the source has no more frames."""
        if self._stages is not None:
            return self._step_threaded()
        t_a = time.perf_counter()
        image = self.reader.read()
        t_b = time.perf_counter()
        if image is None:
            return False
        if self.reader.rewinds != self._rewinds:  # the file started again: a new, unrelated stream
            self._rewinds = self.reader.rewinds
            self.pipeline.reset()
        result = self.pipeline.process(image)
        self._record(result, t_a, (t_b - t_a) * 1e3, pipeline_ms=(time.perf_counter() - t_b) * 1e3)
        return True

    def _step_threaded(self) -> bool:
        if self._pause_began is not None:
            self._pause = (self._pause_began, time.perf_counter() - self._pause_began)
            self._pause_began = None
        result = self._next_threaded()
        if result is None:
            return False
        t_a, decode_ms = self._source.timing(result.frame.index)
        if t_a < self._pause[0]:  # decoded before the pause: its latency leaves the pause out
            t_a += self._pause[1]
        self._record(result, t_a, decode_ms, pipeline_ms=result.timings.total_ms)
        return True

    def _record(self, result, t_a: float, decode_ms: float, pipeline_ms: float) -> None:
        """Draw the frame (timed) and note its samples; its latency runs from t_a (decoding began)."""
        s = self.samples
        t_c = time.perf_counter()
        if self.draw_fn is not None:
            self.draw_fn(result.frame.image, result, self._fps_shown, copy=False)
        t_d = time.perf_counter()
        tm = result.timings
        st = s.stages_ms
        st["decode"].append(decode_ms)
        st["detect"].append(tm.detect_ms)
        st["preprocess"].append(tm.preprocess_ms)
        st["classify"].append(tm.classify_ms)
        st["track"].append(tm.track_ms)
        if self.draw_fn is not None:
            st["draw"].append((t_d - t_c) * 1e3)
        s.pipeline_ms.append(pipeline_ms)
        s.end_to_end_ms.append((t_d - t_a) * 1e3)
        s.faces.append(len(result.faces))
        n = len(s.end_to_end_ms)
        if n % 30 == 0 and s.wall_s > 0:
            self._fps_shown = n / s.wall_s  # what a live runner's HUD would show


def measure_pipeline(reader: FrameReader, pipeline, *, frames: int, warmup: int, duration_s: float | None = None,
                     draw: bool = True, progress: bool = True, workers: int | None = None) -> RunSamples:
    """Run `warmup` + `frames` frames (or until `duration_s`) through pipeline (+ overlay), alone."""
    with PipelineSide(reader, pipeline, draw=draw, capacity=frames + 1, workers=workers) as side:
        side.warmup(warmup)
        run_interleaved([side], frames=frames, duration_s=duration_s, block=max(frames, 1), progress=progress)
    return side.samples


@dataclass(frozen=True)
class BenchConfig:
    """What `fer-edge bench` runs; every field is in the JSON so a number can be reproduced."""

    source: str
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)
    frames: int = 300
    duration_s: float | None = None
    warmup: int = 10
    draw: bool = True
    peer: str = "auto"  # auto (when fer is installed) | on | off

    def to_json(self) -> dict:
        """The benchmark's settings and the pipeline's, in one flat object."""
        return {"source": self.source, "frames": self.frames, "duration_s": self.duration_s, "warmup": self.warmup,
                "draw": self.draw, "peer": self.peer, **flag_settings(self.pipeline)}


def run_pipeline_bench(config: BenchConfig, progress: bool = True, block: int = 25) -> dict:
    """Benchmark the pipeline (and the peer, per `config.peer`) on one source; returns the report.

    With the peer, both run in this process on two readers of the same source (the same frames
    in the same order), alternating blocks of `block` frames (see `run_interleaved`).
    """
    from edge.pipeline import Pipeline

    from benchmarks.common import peer as peer_mod

    with_peer = config.peer == "on" or (config.peer == "auto" and peer_mod.available())
    if config.peer == "on" and not peer_mod.available():
        raise BenchError(f"--peer on but the peer is not installed: {peer_mod.install_hint()}")
    info = machine_info()
    with contextlib.ExitStack() as stack:
        reader = stack.enter_context(FrameReader(config.source))
        first = reader.read()  # the size; this frame is skipped by every side alike
        if first is None:
            raise BenchError(f"{config.source}: no frames could be read")
        height, width = first.shape[:2]
        pipeline = stack.enter_context(Pipeline.from_config(config.pipeline))
        capacity = config.frames + 1 if config.duration_s is None else 4096
        ours = stack.enter_context(PipelineSide(reader, pipeline, draw=config.draw, capacity=capacity))
        ours.warmup(config.warmup)
        # fer-edge's own footprint, before the peer brings TensorFlow into this process.
        rss_alone_mb = psutil.Process().memory_info().rss / 2**20
        # An earlier peer run in this process (bench all) leaves TensorFlow loaded.
        tf_already_loaded = "tensorflow" in sys.modules
        sides = [ours]
        if with_peer:
            peer_reader = stack.enter_context(FrameReader(config.source))
            peer_reader.read()
            sides.append(peer_mod.PeerSide(peer_reader, capacity=capacity))
            sides[1].warmup(config.warmup)
        run_interleaved(sides, frames=config.frames, duration_s=config.duration_s, block=block, progress=progress)
    samples = ours.samples
    if len(samples.end_to_end_ms) == 0:
        raise BenchError(f"{config.source}: no frames were measured (a video shorter than --warmup?)")
    report = {
        "schema": SCHEMA,
        "kind": "pipeline",
        "source": config.source,
        "resolution": [int(width), int(height)],
        "config": config.to_json(),
        "machine": info,
        "model": model_info(config.pipeline.emotion_model),
        **samples_report(samples),
        "workers": ours.workers,
        "rss_alone_mb": rss_alone_mb,
        "rss_alone_includes_tensorflow": tf_already_loaded,
        "rss_series": {"t_s": _thin(samples.t_s), "rss_mb": _thin(samples.rss_mb)},
        "_samples": samples,  # not serialised: for the plots
        "peer": None,
        "fps_ratio": None,
    }
    if with_peer:
        peer_side = sides[1]
        peer_report = peer_side.report()
        report["peer"] = peer_report
        report["interleaved_block_frames"] = block
        if peer_report["fps"] > 0:
            report["fps_ratio"] = report["fps"] / peer_report["fps"]
    elif config.peer == "auto":
        report["peer_note"] = f"peer not run: {peer_mod.install_hint()}"
    return report


def _thin(values, max_points: int = 2000) -> list:
    """At most `max_points` evenly spaced values (keeps a 10,000-frame JSON small)."""
    values = np.asarray(values)
    if len(values) <= max_points:
        return [round(float(v), 4) for v in values]
    idx = np.linspace(0, len(values) - 1, max_points).round().astype(int)
    return [round(float(values[i]), 4) for i in idx]


# ----------------------------------------------------------------------------- outputs

def to_json(report):
    """The report without the raw sample arrays ("_" keys, at any depth): JSON-ready."""
    if isinstance(report, dict):
        return {k: to_json(v) for k, v in report.items() if not str(k).startswith("_")}
    if isinstance(report, (list, tuple)):
        return [to_json(v) for v in report]
    return report


def write_json(report: dict, path: str | os.PathLike) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(to_json(report), indent=2) + "\n")
    return path


def _row(name: str, st: dict) -> str:
    return f"| {name} | {st['p50']:.2f} | {st['p95']:.2f} | {st['p99']:.2f} | {st['mean']:.2f} |"


def markdown(report: dict) -> str:
    """A markdown summary: headline numbers, then a per-stage latency table (ms)."""
    w, h = report["resolution"]
    cfg = report["config"]
    lines = [f"### fer-edge bench: {Path(report['source']).name} ({w}x{h}), {report['frames']} frames",
             "",
             f"- frames/s (end to end): **{report['fps']:.1f}**; latency p50 {report['latency_ms']['p50']:.2f} ms, "
             f"p95 {report['latency_ms']['p95']:.2f} ms, p99 {report['latency_ms']['p99']:.2f} ms",
             f"- CPU {report['cpu_percent']:.0f} % of one core; RSS {report['rss_alone_mb']:.0f} MB after warm-up"
             + (f" (peak {report['rss_mb']['peak']:.0f} MB with the peer and TensorFlow in the process)"
                if report.get("peer") else f", peak {report['rss_mb']['peak']:.0f} MB")
             + f"; faces/frame {report['faces_per_frame']['mean']:.2f}",
             f"- detector {cfg['detector']} ({cfg['range']} range, scan {cfg.get('scan', 'frame')}, "
             f"carry {cfg.get('carry_frames', 0)} frames), "
             f"threads {cfg['threads'] or 'default'}, workers {report.get('workers', 1)}, "
             f"model {Path(report['model']['path']).name}"
             + (" (PROVISIONAL)" if report["model"].get("provisional") else "")
             + (f", TTA {cfg['tta']}" if cfg.get("tta", "none") != "none" else ""),
             "",
             "| stage | p50 ms | p95 ms | p99 ms | mean ms |",
             "| --- | ---: | ---: | ---: | ---: |"]
    for name, st in report["stages"].items():
        lines.append(_row(name, st))
    lines.append(_row("**end to end**", report["latency_ms"]))
    peer = report.get("peer")
    if peer:
        lines += ["", f"Peer: {peer['name']} on the same frames, same process:", "",
                  "| stage | p50 ms | p95 ms | p99 ms | mean ms |", "| --- | ---: | ---: | ---: | ---: |"]
        for name, st in peer["stages"].items():
            lines.append(_row(name, st))
        lines.append(_row("**end to end**", peer["latency_ms"]))
        lines += ["", f"- peer frames/s **{peer['fps']:.1f}**, CPU {peer['cpu_percent']:.0f} %, "
                      f"faces/frame {peer['faces_per_frame']['mean']:.2f}",
                  f"- **fer-edge / peer frames/s: {report['fps_ratio']:.1f}x**" if report.get("fps_ratio")
                  else "- ratio: n/a"]
    elif report.get("peer_note"):
        lines += ["", f"_{report['peer_note']}_"]
    return "\n".join(lines) + "\n"


def plot(report: dict, path: str | os.PathLike) -> Path:
    """Boxplots of per-stage latency (ours, and the peer's when it ran), PNG."""
    plt = pyplot()

    samples: RunSamples = report["_samples"]
    names = [k for k, v in samples.stages_ms.items() if len(v)] + ["end to end"]
    data = [np.asarray(samples.stages_ms[k]) for k in names[:-1]] + [np.asarray(samples.end_to_end_ms)]
    peer = report.get("peer")
    ncols = 2 if peer and peer.get("_samples") else 1
    fig, axes = plt.subplots(1, ncols, figsize=(6.5 * ncols, 4.2), squeeze=False)
    ax = axes[0, 0]
    ax.boxplot(data, showfliers=True, whis=(5, 95), flierprops={"markersize": 2})
    ax.set_xticks(range(1, len(names) + 1), names, rotation=30, ha="right")
    ax.set_ylabel("ms per frame (whiskers p5-p95)")
    ax.set_title(f"fer-edge: {report['fps']:.0f} frames/s, p95 {report['latency_ms']['p95']:.1f} ms")
    ax.grid(axis="y", alpha=0.3)
    if ncols == 2:
        ps = peer["_samples"]
        pnames = [k for k, v in ps.stages_ms.items() if len(v)] + ["end to end"]
        pdata = [np.asarray(ps.stages_ms[k]) for k in pnames[:-1]] + [np.asarray(ps.end_to_end_ms)]
        ax2 = axes[0, 1]
        ax2.boxplot(pdata, showfliers=True, whis=(5, 95), flierprops={"markersize": 2})
        ax2.set_xticks(range(1, len(pnames) + 1), pnames, rotation=30, ha="right")
        ax2.set_title(f"{peer['name']}: {peer['fps']:.1f} frames/s")
        ax2.grid(axis="y", alpha=0.3)
    w, h = report["resolution"]
    fig.suptitle(f"{Path(report['source']).name} {w}x{h}, {report['frames']} frames", fontsize=10)
    return save_figure(fig, path)


def write_outputs(report: dict, json_path: str | os.PathLike) -> dict[str, Path]:
    """JSON at `json_path`, markdown and PNG beside it (same stem)."""
    json_path = Path(json_path)
    out = {"json": write_json(report, json_path)}
    md = json_path.with_suffix(".md")
    md.write_text(markdown(report))
    out["markdown"] = md
    out["plot"] = plot(report, json_path.with_suffix(".png"))
    return out

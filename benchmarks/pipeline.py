"""The pipeline benchmark: the real pipeline on a video file or a camera, timed per stage.

    report = run_pipeline_bench("video.mp4", frames=300)
    report["fps"], report["latency_ms"]["p95"], report["stages"]["detect"]["p50"]

Frames are read synchronously from OpenCV so that decoding (or capture) is timed as its own
stage; then `Pipeline.process` (detect, preprocess, classify, track, with its own timings) and
the overlay (`edge.overlay.draw`) run on each frame. End-to-end latency per frame is
decode + process + draw, on the monotonic `time.perf_counter`. The first `warmup` frames are
run but not counted (interpreter warm-up, first allocations). A video shorter than the
requested frame count is rewound and played again (tracks are reset at each rewind), so the
same short file serves a 10,000-frame soak.

CPU % is the process's user + system CPU time over the wall time of the counted frames (100 %
= one core busy); RSS is sampled after every frame. When the peer (`fer`) is installed it runs
on the same frames in the same process right after ours (see benchmarks/peer.py).
"""

from __future__ import annotations

import json
import logging
import os
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import psutil

log = logging.getLogger(__name__)

SCHEMA = "fer-edge-bench/1"
STAGES = ("decode", "detect", "preprocess", "classify", "track", "draw")
PERCENTILES = (50, 95, 99)


class BenchError(RuntimeError):
    """A benchmark that cannot run (source will not open, no frames); says what to do."""


# ----------------------------------------------------------------------------- statistics

def summarize(values_ms) -> dict:
    """Latencies in ms -> {"p50", "p95", "p99", "mean", "max", "n"} (zeros when empty)."""
    a = np.asarray(values_ms, dtype=np.float64)
    if a.size == 0:
        return {"p50": 0.0, "p95": 0.0, "p99": 0.0, "mean": 0.0, "max": 0.0, "n": 0}
    out = {f"p{p}": float(np.percentile(a, p)) for p in PERCENTILES}
    out.update(mean=float(a.mean()), max=float(a.max()), n=int(a.size))
    return out


def machine_info() -> dict:
    """What the numbers were measured on."""
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    return {"cpu": cpu or platform.processor(), "cores": os.cpu_count(), "machine": platform.machine(),
            "system": platform.system(), "python": platform.python_version(),
            "loadavg_1m_at_start": round(float(load[0]), 2)}


def model_info(model_path: str | os.PathLike | None) -> dict:
    """The emotion model's path, quantization and whether its sidecar says it is provisional."""
    from edge.models import default_emotion_model
    from edge.sidecar import load_sidecar

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
    """Synchronous OpenCV reader for a video file or a camera index; rewinds a file at its end.

    `read()` -> (H, W, 3) uint8 BGR, or None when a camera stops or a file has no frames at all.
    `rewinds` counts how often the file was played again.
    """

    def __init__(self, source: str, loop: bool = True, width: int | None = None, height: int | None = None):
        import cv2

        self.source = str(source)
        self.camera = self.source.isdigit()
        if not self.camera and not Path(self.source).is_file():
            raise BenchError(f"{self.source}: no such video file (or pass a camera index such as 0)")
        self.loop = loop and not self.camera
        self.width, self.height = width, height
        self.rewinds = 0
        self._cv2 = cv2
        self._cap = None
        self._open()

    def _open(self) -> None:
        cv2 = self._cv2
        cap = cv2.VideoCapture(int(self.source)) if self.camera else cv2.VideoCapture(self.source)
        if not cap.isOpened():
            cap.release()
            raise BenchError(f"{self.source}: OpenCV cannot open this source "
                             "(check the path, the codec, or the camera index)")
        if self.camera and self.width and self.height:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.width)
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.height)
        self._cap = cap

    def read(self):
        ok, image = self._cap.read()
        if ok and image is not None:
            return image
        if not self.loop:
            return None
        # End of the file: reopen (more reliable than seeking across codecs) and go on.
        self._cap.release()
        self._open()
        self.rewinds += 1
        ok, image = self._cap.read()
        return image if ok else None

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None

    def __enter__(self) -> "FrameReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# ----------------------------------------------------------------------------- the run

@dataclass
class RunSamples:
    """Per-frame measurements of one counted run (ms, MB)."""

    stages_ms: dict = field(default_factory=lambda: {s: [] for s in STAGES})
    end_to_end_ms: list = field(default_factory=list)
    pipeline_ms: list = field(default_factory=list)
    faces: list = field(default_factory=list)
    rss_mb: list = field(default_factory=list)  # after each counted frame
    t_s: list = field(default_factory=list)  # seconds since the first counted frame
    wall_s: float = 0.0
    cpu_s: float = 0.0
    interrupted: bool = False


def _draw_fn():
    """edge.overlay.draw when present (it is part of the runtime), else None (draw not timed)."""
    try:
        from edge.overlay import draw
    except ImportError:  # an install without the overlay module: report draw as not measured
        return None
    return draw


def _progress(total: int | None, desc: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="frame", disable=not enabled, leave=False,
                dynamic_ncols=True, mininterval=0.5)


def measure_pipeline(reader: FrameReader, pipeline, *, frames: int, warmup: int, duration_s: float | None = None,
                     draw: bool = True, progress: bool = True, desc: str = "fer-edge") -> RunSamples:
    """Run `warmup` + `frames` frames (or until `duration_s`) through pipeline (+ overlay).

    Ctrl-C stops the run early and keeps what was measured (`interrupted` is set).
    """
    draw_fn = _draw_fn() if draw else None
    proc = psutil.Process()
    s = RunSamples()
    if draw_fn is None:
        s.stages_ms.pop("draw")
    rewinds = reader.rewinds
    for _ in range(warmup):
        image = reader.read()
        if image is None:
            break
        result = pipeline.process(image)
        if draw_fn is not None:
            draw_fn(image, result, copy=False)
    total = None if duration_s else frames
    bar = _progress(total, desc, progress)
    cpu0 = proc.cpu_times()
    t0 = time.perf_counter()
    fps_shown = None
    try:
        while True:
            n = len(s.end_to_end_ms)
            if duration_s is None and n >= frames:
                break
            if duration_s is not None and time.perf_counter() - t0 >= duration_s:
                break
            t_a = time.perf_counter()
            image = reader.read()
            t_b = time.perf_counter()
            if image is None:
                break
            if reader.rewinds != rewinds:  # the file started again: a new, unrelated stream
                rewinds = reader.rewinds
                pipeline.reset()
            result = pipeline.process(image)
            t_c = time.perf_counter()
            if draw_fn is not None:
                draw_fn(image, result, fps_shown, copy=False)
            t_d = time.perf_counter()
            tm = result.timings
            st = s.stages_ms
            st["decode"].append((t_b - t_a) * 1e3)
            st["detect"].append(tm.detect_ms)
            st["preprocess"].append(tm.preprocess_ms)
            st["classify"].append(tm.classify_ms)
            st["track"].append(tm.track_ms)
            if draw_fn is not None:
                st["draw"].append((t_d - t_c) * 1e3)
            s.pipeline_ms.append((t_c - t_b) * 1e3)
            s.end_to_end_ms.append((t_d - t_a) * 1e3)
            s.faces.append(len(result.faces))
            s.rss_mb.append(proc.memory_info().rss / 2**20)
            s.t_s.append(t_d - t0)
            bar.update(1)
            if (n + 1) % 30 == 0:
                fps_shown = (n + 1) / max(t_d - t0, 1e-9)
                bar.set_postfix(fps=f"{fps_shown:.0f}", refresh=False)
    except KeyboardInterrupt:
        s.interrupted = True
        log.warning("interrupted after %d frames; reporting those", len(s.end_to_end_ms))
    finally:
        bar.close()
    s.wall_s = time.perf_counter() - t0
    cpu1 = proc.cpu_times()
    s.cpu_s = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
    return s


def samples_report(s: RunSamples) -> dict:
    """The numbers of one run: fps, latency, per stage, CPU, RSS, faces per frame."""
    n = len(s.end_to_end_ms)
    faces = np.asarray(s.faces, dtype=np.int64)
    rss = np.asarray(s.rss_mb, dtype=np.float64)
    return {
        "frames": n,
        "wall_s": round(s.wall_s, 3),
        "fps": n / s.wall_s if s.wall_s > 0 and n else 0.0,
        "latency_ms": summarize(s.end_to_end_ms),
        "pipeline_latency_ms": summarize(s.pipeline_ms),
        "stages": {k: summarize(v) for k, v in s.stages_ms.items()},
        "cpu_percent": 100.0 * s.cpu_s / s.wall_s if s.wall_s > 0 else 0.0,
        "rss_mb": {"start": float(rss[0]) if rss.size else 0.0, "peak": float(rss.max()) if rss.size else 0.0,
                   "end": float(rss[-1]) if rss.size else 0.0},
        "faces_per_frame": {"mean": float(faces.mean()) if faces.size else 0.0,
                            "min": int(faces.min()) if faces.size else 0,
                            "max": int(faces.max()) if faces.size else 0,
                            "frames_with_faces": int((faces > 0).sum())},
        "interrupted": s.interrupted,
    }


@dataclass(frozen=True)
class BenchConfig:
    """What `fer-edge bench` runs; every field is in the JSON so a number can be reproduced."""

    source: str
    frames: int = 300
    duration_s: float | None = None
    warmup: int = 10
    threads: int | None = None
    detector: str = "blazeface"
    range: str = "short"
    detector_model: str | None = None
    emotion_model: str | None = None
    draw: bool = True
    peer: str = "auto"  # auto (when fer is installed) | on | off


def run_pipeline_bench(config: BenchConfig, progress: bool = True) -> dict:
    """Benchmark the pipeline (and the peer, per `config.peer`) on one source; returns the report."""
    from edge.pipeline import Pipeline

    overrides = {"detector": config.detector, "range": config.range, "threads": config.threads}
    if config.detector_model:
        overrides["detector_model"] = config.detector_model
    if config.emotion_model:
        overrides["emotion_model"] = config.emotion_model
    info = machine_info()
    with FrameReader(config.source) as reader:
        first = reader.read()
        if first is None:
            raise BenchError(f"{config.source}: no frames could be read")
        height, width = first.shape[:2]
        with Pipeline.from_defaults(**overrides) as pipeline:
            samples = measure_pipeline(reader, pipeline, frames=config.frames, warmup=config.warmup,
                                       duration_s=config.duration_s, draw=config.draw, progress=progress)
    if not samples.end_to_end_ms:
        raise BenchError(f"{config.source}: no frames were measured (a video shorter than --warmup?)")
    ours = samples_report(samples)
    report = {
        "schema": SCHEMA,
        "kind": "pipeline",
        "source": config.source,
        "resolution": [int(width), int(height)],
        "config": asdict(config),
        "machine": info,
        "model": model_info(config.emotion_model),
        **ours,
        "rss_series": {"t_s": _thin(samples.t_s), "rss_mb": _thin(samples.rss_mb)},
        "_samples": samples,  # not serialised: for the plot
        "peer": None,
        "fps_ratio": None,
    }
    if config.peer != "off":
        from benchmarks import peer as peer_mod

        if peer_mod.available():
            n = ours["frames"]
            with FrameReader(config.source) as reader:
                reader.read()  # the same first frame skipped as in our run
                peer_report = peer_mod.run_peer_bench(reader, frames=n, warmup=config.warmup, progress=progress)
            report["peer"] = peer_report
            if peer_report["fps"] > 0:
                report["fps_ratio"] = ours["fps"] / peer_report["fps"]
        elif config.peer == "on":
            raise BenchError(f"--peer on but the peer is not installed: {peer_mod.install_hint()}")
        else:
            report["peer_note"] = f"peer not run: {peer_mod.install_hint()}"
    return report


def _thin(values: list, max_points: int = 2000) -> list:
    """At most `max_points` evenly spaced values (keeps a 10,000-frame JSON small)."""
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
             f"- CPU {report['cpu_percent']:.0f} % of one core; RSS peak {report['rss_mb']['peak']:.0f} MB; "
             f"faces/frame {report['faces_per_frame']['mean']:.2f}",
             f"- detector {cfg['detector']} ({cfg['range']} range), threads {cfg['threads'] or 'default'}, "
             f"model {Path(report['model']['path']).name}"
             + (" (PROVISIONAL)" if report["model"].get("provisional") else ""),
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
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    samples: RunSamples = report["_samples"]
    names = [k for k, v in samples.stages_ms.items() if v] + ["end to end"]
    data = [samples.stages_ms[k] for k in names[:-1]] + [samples.end_to_end_ms]
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
        pnames = [k for k, v in ps.stages_ms.items() if v] + ["end to end"]
        pdata = [ps.stages_ms[k] for k in pnames[:-1]] + [ps.end_to_end_ms]
        ax2 = axes[0, 1]
        ax2.boxplot(pdata, showfliers=True, whis=(5, 95), flierprops={"markersize": 2})
        ax2.set_xticks(range(1, len(pnames) + 1), pnames, rotation=30, ha="right")
        ax2.set_title(f"{peer['name']}: {peer['fps']:.1f} frames/s")
        ax2.grid(axis="y", alpha=0.3)
    w, h = report["resolution"]
    fig.suptitle(f"{Path(report['source']).name} {w}x{h}, {report['frames']} frames", fontsize=10)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def write_outputs(report: dict, json_path: str | os.PathLike) -> dict[str, Path]:
    """JSON at `json_path`, markdown and PNG beside it (same stem)."""
    json_path = Path(json_path)
    out = {"json": write_json(report, json_path)}
    md = json_path.with_suffix(".md")
    md.write_text(markdown(report))
    out["markdown"] = md
    out["plot"] = plot(report, json_path.with_suffix(".png"))
    return out

"""The soak: the loop of `fer-edge run --headless` over many frames, RSS read after each one.

    report = run_soak(BenchConfig(source="video.mp4", frames=10_000))
    report["rss_growth_mb"], report["rss_slope_mb_per_10k_frames"]

It calls `edge.cli.run.run` itself, with its capture thread, its JSON Lines sink (written to
os.devnull unless `jsonl` names a file) and its run summary, so anything that loop keeps per
frame shows up here. `run` plays a file once, so a video shorter than warm-up + frames is first
copied into a temporary video that plays it over and over (the copy is not timed). RSS is
stored after every frame in an array filled before the run, so the harness adds nothing that
grows. Growth compares the medians of the first and the last tenth of the measured frames (after
the warm-up); the slope of a straight-line fit is given per 10,000 frames.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from pathlib import Path

import numpy as np
import psutil

from benchmarks.common.outputs import pyplot, save_figure
from benchmarks.speed.pipeline import SCHEMA, BenchConfig, BenchError, FrameReader, _thin, model_info, to_json
from edge.machine import machine_info

SLOPE_FRAMES = 10_000  # the slope is reported per this many frames


def rss_growth(rss_mb, frac: float = 0.1) -> dict:
    """RSS samples (MB, one per frame) -> growth between the first and last `frac` of the run."""
    a = np.asarray(rss_mb, dtype=np.float64)
    if a.size == 0:
        return {"rss_growth_mb": 0.0, "rss_slope_mb_per_10k_frames": 0.0, "rss_first_mb": 0.0, "rss_last_mb": 0.0,
                "rss_peak_mb": 0.0}
    k = max(1, int(a.size * frac))
    first, last = float(np.median(a[:k])), float(np.median(a[-k:]))
    slope = float(np.polyfit(np.arange(a.size), a, 1)[0] * SLOPE_FRAMES) if a.size > 1 else 0.0
    return {"rss_growth_mb": last - first, "rss_slope_mb_per_10k_frames": slope, "rss_first_mb": first,
            "rss_last_mb": last, "rss_peak_mb": float(a.max())}


def frame_count_and_fps(source: str) -> tuple[int, float]:
    """(frame count the container states, frames/s) of a video file; BenchError when it does not open."""
    from edge.capture.readers import CvReader

    if not Path(source).is_file():
        raise BenchError(f"{source}: no such video file (or pass a camera index such as 0)")
    try:
        reader = CvReader(source, live=False)
    except OSError:
        raise BenchError(f"{source}: OpenCV cannot open this video") from None
    try:
        return reader.frame_count, reader.fps or 0.0
    finally:
        reader.close()


def looped_copy(source: str, frames: int, folder: str | os.PathLike) -> Path:
    """A video of `frames` frames in `folder` that plays `source` over and over."""
    from edge.outputs.sinks import VideoSink

    _, fps = frame_count_and_fps(source)
    out = Path(folder) / (Path(source).stem + "_looped.mp4")
    with FrameReader(source, loop=True) as reader, VideoSink(out, fps=fps or 25.0) as sink:
        for _ in range(frames):
            image = reader.read()
            if image is None:
                raise BenchError(f"{source}: no frames could be read")
            sink.write_image(image)
    return out


def run_soak(config: BenchConfig, progress: bool = True, jsonl: str = os.devnull) -> dict:
    """`config.warmup` + `config.frames` frames through `fer-edge run --headless`; returns the report."""
    from tqdm import tqdm

    from edge.cli import CliError
    from edge.cli.run import RunConfig, run
    from edge.loop import RunSummary

    if config.duration_s is not None:
        raise BenchError("the soak counts frames: use --frames, not --duration")
    if config.frames < 1:
        raise BenchError("--frames must be at least 1")
    needed = config.warmup + config.frames
    camera = str(config.source).isdigit()
    rss_mb = np.full(needed, np.nan)  # written now: resident before the run, so never counted as growth
    done = [0]
    size: list[tuple[int, int]] = []
    stop = threading.Event()
    proc = psutil.Process()
    summary = RunSummary()
    with tempfile.TemporaryDirectory(prefix="fer-edge-soak-") as tmp:
        source = str(config.source)
        if not camera and frame_count_and_fps(source)[0] < needed:
            source = str(looped_copy(source, needed, tmp))
        bar = tqdm(total=needed, desc="soak (fer-edge run)", unit="frame", disable=not progress, leave=False,
                   mininterval=0.5)

        def on_frame(result) -> None:
            i = done[0]
            if i < needed:
                rss_mb[i] = proc.memory_info().rss / 2**20
                done[0] = i + 1
                bar.update(1)
            if not size:
                h, w = result.frame.image.shape[:2]
                size.append((int(w), int(h)))
            if done[0] >= needed:
                stop.set()

        run_config = RunConfig(source=source, pipeline=config.pipeline, headless=True, jsonl=jsonl)
        try:
            run(run_config, stop, summary=summary, on_frame=on_frame)
        except CliError as exc:
            raise BenchError(str(exc)) from None
        finally:
            bar.close()
    measured = rss_mb[config.warmup:done[0]]
    if measured.size == 0:
        raise BenchError(f"{config.source}: no frames were measured after the {config.warmup} warm-up frames")
    p50, p95 = summary.percentiles(50)["total"], summary.percentiles(95)["total"]
    return {
        "schema": SCHEMA,
        "kind": "soak",
        "loop": "fer-edge run --headless (capture thread, pipeline, JSON Lines sink, run summary)",
        "source": str(config.source),
        "resolution": list(size[0]) if size else [0, 0],
        "config": config.to_json(),
        "machine": machine_info(),
        "model": model_info(config.pipeline.emotion_model),
        "frames": int(measured.size),
        "warmup": config.warmup,
        "interrupted": done[0] < needed,
        "wall_s": round(summary.wall_s, 3),
        "fps": summary.fps,
        "latency_ms": {"p50": p50, "p95": p95, "frames": summary.window_frames},
        **rss_growth(measured),
        "rss_series": {"frame": _thin(np.arange(measured.size)), "rss_mb": _thin(measured)},
        "_rss_mb": measured,  # not serialised: for the plot
    }


def markdown(report: dict) -> str:
    w, h = report["resolution"]
    lat = report["latency_ms"]
    return (f"### Soak: `fer-edge run --headless` over {report['frames']} frames of "
            f"{Path(report['source']).name} ({w}x{h}) after {report['warmup']} warm-up frames, "
            f"{report['wall_s']:.0f} s\n\n"
            f"- RSS growth **{report['rss_growth_mb']:+.1f} MB** (median of the first vs the last tenth), "
            f"slope **{report['rss_slope_mb_per_10k_frames']:+.2f} MB per 10,000 frames**, "
            f"peak {report['rss_peak_mb']:.0f} MB\n"
            f"- frames/s {report['fps']:.1f}, latency per frame p50 {lat['p50']:.2f} ms, p95 {lat['p95']:.2f} ms "
            f"(last {lat['frames']} frames); the loop: {report['loop']}\n")


def plot(report: dict, path: str | os.PathLike) -> Path:
    """RSS (MB) over the measured frames of the run, PNG."""
    plt = pyplot()

    rss = np.asarray(report["_rss_mb"])
    fig, ax = plt.subplots(figsize=(6.5, 3.2))
    ax.plot(np.arange(1, len(rss) + 1), rss, lw=1)
    ax.set_xlabel("frame (after warm-up)")
    ax.set_ylabel("RSS MB")
    ax.set_title(f"fer-edge run, {len(rss)} frames: growth {report['rss_growth_mb']:+.1f} MB, "
                 f"{report['rss_slope_mb_per_10k_frames']:+.2f} MB/10k frames", fontsize=9)
    ax.grid(alpha=0.3)
    return save_figure(fig, path)


def write_outputs(report: dict, json_path: str | os.PathLike) -> dict[str, Path]:
    json_path = Path(json_path)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(to_json(report), indent=2) + "\n")
    md = json_path.with_suffix(".md")
    md.write_text(markdown(report))
    return {"json": json_path, "markdown": md, "plot": plot(report, json_path.with_suffix(".png"))}

"""Helpers shared by the `fer-edge batch` tests: real inputs, `fer-edge run`'s own records, the output invariants."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import cv2

from edge_runtime_helpers import scene_video

REPO = Path(__file__).resolve().parents[3]


def make_videos(folder: Path, faces_dir: Path, n: int, *, frames: int = 30) -> list[Path]:
    """n real MP4s (OpenCV) of FER faces drifting in a 640x360 room, one or two faces each."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        truth, _ = scene_video(folder / f"clip{i}.mp4", faces_dir, n_frames=frames, faces_per_frame=1 + i % 2,
                               seed=i)
        paths.append(folder / truth.video)
    return paths


def make_photos(folder: Path, video: Path, n: int) -> list[Path]:
    """n JPEG photos: frames of a real video with faces in them."""
    folder.mkdir(parents=True, exist_ok=True)
    cap = cv2.VideoCapture(str(video))
    paths = []
    for i in range(n):
        ok, frame = cap.read()
        assert ok, video
        paths.append(folder / f"photo{i}.jpg")
        assert cv2.imwrite(str(paths[-1]), frame)
    cap.release()
    return paths


def run_records(source: Path, out: Path) -> list[dict]:
    """The records `fer-edge run --source SOURCE --headless --jsonl OUT` writes, timings aside."""
    from edge.cli.run import RunConfig, run

    run(RunConfig(source=str(source), headless=True, jsonl=str(out)), quiet=True)
    return records(out)


def records(jsonl: Path) -> list[dict]:
    out = []
    for line in jsonl.read_text().splitlines():
        record = json.loads(line)
        record.pop("latency_ms")
        out.append(record)
    return out


def batch(*args: str, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """`fer-edge batch ARGS` in its own interpreter."""
    return subprocess.run([sys.executable, "-m", "edge", "batch", *args], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=timeout)


def start_batch(*args: str, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "edge", "batch", *args], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})})


def wait_for_done_files(runs: Path, count: int, proc: subprocess.Popen, timeout_s: float = 600) -> int:
    """Wait until runs/ holds `count` .done.json files (or the batch ended); how many it holds."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        n = len(list(runs.glob("*.done.json"))) if runs.is_dir() else 0
        if n >= count or proc.poll() is not None:
            return n
        time.sleep(0.02)
    raise AssertionError(f"no {count} finished inputs in {runs} within {timeout_s} s")


def index_rows(out: Path) -> list[dict]:
    with open(out / "index.csv", newline="") as f:
        return list(csv.DictReader(f))


def assert_whole(out: Path) -> dict[str, dict]:
    """Every output is whole and once: each .jsonl has its .done.json and the other way round, a
    video's summary.csv is there, nothing staged or temporary is left. The .done.json markers by name."""
    runs = out / "runs"
    done = {p.name.removesuffix(".done.json"): json.loads(p.read_text()) for p in runs.glob("*.done.json")}
    jsonl = {p.stem for p in runs.glob("*.jsonl")}
    assert jsonl == set(done), (sorted(jsonl), sorted(done))
    for name, marker in done.items():
        for suffix in marker["files"]:
            assert (runs / f"{name}{suffix}").is_file()
        if marker["row"]["kind"] == "video":
            assert ".summary.csv" in marker["files"]
    leftovers = [p.name for p in runs.rglob("*") if p.is_file() and (".tmp" in p.name or p.parent.name == ".staging")]
    assert leftovers == []
    return done

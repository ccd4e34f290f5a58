"""Helpers shared by the runtime tests: the committed FER-2013 faces and scene videos made from them."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import cv2
import numpy as np

from edge.labels import LABELS
from edge.types import Faces, Frame, FrameResult, StageTimings


def fer_faces(faces_dir: Path, per_class: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """(n, 48, 48) uint8 gray FER-2013 crops and (n,) int64 labels, the first `per_class` of each class.

    `faces_dir` holds <class>/PublicTest_*.jpg: the committed test faces (the `faces_dir` fixture).
    """
    faces, labels = [], []
    for li, name in enumerate(LABELS):
        for p in sorted((faces_dir / name).glob("PublicTest_*.jpg"))[:per_class]:
            img = cv2.imread(str(p), cv2.IMREAD_GRAYSCALE)
            if img is not None:
                faces.append(img)
                labels.append(li)
    return np.stack(faces), np.asarray(labels, np.int64)


def scene_video(path: Path, faces_dir: Path, *, n_frames: int = 30, size=(640, 360), faces_per_frame=1,
                face_px=(120, 180), seed: int = 0, per_class: int = 2, fps: float = 15.0):
    """A real video file of upscaled FER faces at known places (benchmarks.scenes.synthetic); returns (truth, faces)."""
    from benchmarks.scenes.synthetic import make_scene_video

    faces, labels = fer_faces(faces_dir, per_class)
    truth = make_scene_video(path, faces, labels, n_frames=n_frames, size=size, faces_per_frame=faces_per_frame,
                             face_px=face_px, seed=seed, fps=fps)
    return truth, faces


def known_result(n: int = 2, source: str = "", label_index=None, index: int = 7,
                 size: tuple[int, int] = (320, 240)) -> FrameResult:
    """A FrameResult with n known faces (80 px boxes side by side, seeded probabilities, fixed
    timings) on a blank frame of `size` (width, height), for the outputs and the record, not
    the pipeline. label_index: the shown labels (default: the largest of each face's probs)."""
    rng = np.random.default_rng(n)
    probs = rng.dirichlet(np.ones(len(LABELS)), size=n).astype(np.float32)
    xyxy = np.asarray([[10 + 100 * i, 20, 90 + 100 * i, 100] for i in range(n)], np.int32).reshape(-1, 4)
    faces = Faces(xyxy, np.linspace(0.9, 0.6, n).astype(np.float32), np.zeros((n, 6, 2), np.float32))
    return FrameResult(
        frame=Frame(np.zeros((size[1], size[0], 3), np.uint8), index=index, t=0.5, source=source), faces=faces,
        track_ids=np.arange(1, n + 1, dtype=np.int64), probs=probs, labels=LABELS,
        timings=StageTimings(detect_ms=3.0, preprocess_ms=0.5, classify_ms=1.5, track_ms=0.1, total_ms=5.2),
        label_index=np.argmax(probs, axis=1) if label_index is None else np.asarray(label_index, np.int64))


def signal_after_lines(proc: subprocess.Popen, jsonl: Path, sig: int, *, lines: int = 5,
                       timeout_s: float = 120) -> tuple[str, str]:
    """Send `sig` to a running `fer-edge run` once `jsonl` holds `lines` records; its (stdout, stderr)."""
    try:
        deadline = time.monotonic() + 300  # generous: CI machines can be loaded
        while not (jsonl.is_file() and len(jsonl.read_text().splitlines()) >= lines):
            assert proc.poll() is None, proc.communicate()[1][-2000:]
            assert time.monotonic() < deadline, "no output within 300 s"
            time.sleep(0.1)
        proc.send_signal(sig)
        return proc.communicate(timeout=timeout_s)
    finally:
        if proc.poll() is None:
            proc.kill()

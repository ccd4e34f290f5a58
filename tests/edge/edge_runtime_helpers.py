"""Helpers shared by the runtime tests: the committed FER-2013 faces and scene videos made from them."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from edge.labels import LABELS


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

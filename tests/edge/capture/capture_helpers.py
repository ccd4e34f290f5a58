"""The capture tests' videos: each frame a flat gray whose level gives its index, written by OpenCV."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from edge.types import Frame

SIZE = (160, 120)  # w, h


def level(index: int) -> int:
    return (index * 2) % 250  # each frame is a flat gray of this level, so content identifies it


def write_video(path: Path, n: int, fps: float = 25.0) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, SIZE)
    assert writer.isOpened()
    for i in range(n):
        writer.write(np.full((SIZE[1], SIZE[0], 3), level(i), np.uint8))
    writer.release()
    return path


def assert_content(frame: Frame) -> None:
    assert abs(float(frame.image.mean()) - level(frame.index)) < 3, "frame content does not match its index"

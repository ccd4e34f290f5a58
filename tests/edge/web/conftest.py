"""Fixtures for the web tests: real FER-2013 faces (the committed ones) on backgrounds (helpers in web_helpers.py)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from web_helpers import FACE_CLASSES, scene


@pytest.fixture(scope="session")
def fer_faces(faces_dir) -> list[np.ndarray]:
    """Four (48, 48) uint8 gray FER-2013 test faces, one per class in FACE_CLASSES."""
    faces = []
    for cls in FACE_CLASSES:
        paths = sorted((faces_dir / cls).glob("PublicTest_*.jpg"))
        assert paths, f"no PublicTest images for {cls} in {faces_dir}"
        face = cv2.imread(str(paths[0]), cv2.IMREAD_GRAYSCALE)
        assert face is not None and face.shape == (48, 48), paths[0]
        faces.append(face)
    return faces


@pytest.fixture(scope="session")
def face_scene(fer_faces) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """One face on a 640x480 background, and the placed square (x1, y1, x2, y2)."""
    x, y, side = 200, 120, 240
    return scene(fer_faces[:1], [(x, y, side)]), (x, y, x + side, y + side)

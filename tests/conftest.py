"""Shared fixtures: FER-2013 (full set, when present), the committed test faces, the detectors, the shipped model.

Set-up on a fresh clone is the README's: the detectors in the user cache (`fer-edge models pull
--range all`) or wherever `$FER_EDGE_MODEL_DIR` says, FER-2013 wherever `$FER_EDGE_DATA` says (else
data/fer2013); tests that need FER-2013 skip with a reason when it is absent.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.labels import LABELS
from edge.models.registry import ENV_MODEL_DIR, locate_detector_model
from train.data import DATA_ENV, default_data_path

REPO = Path(__file__).resolve().parents[1]
FACES_DIR = REPO / "tests" / "fixtures" / "faces"
EMOTION_MODEL = REPO / "models" / "emotion_int8.tflite"


def fer_path() -> Path:
    """Where the full FER-2013 is, as the commands look for it ($FER_EDGE_DATA, else data/fer2013)."""
    return Path(default_data_path()).expanduser().resolve()


# Each detector's file, looked up once at start-up as the runtime looks it up (tests that
# change the environment, e.g. to an empty cache, must not change what the fixtures found).
DETECTORS: dict[str, Path | None] = {}


def pytest_configure(config):
    for range_ in ("short", "full"):
        DETECTORS[range_] = locate_detector_model(range_)[0]


@pytest.fixture(scope="session")
def fer_dir() -> Path:
    """The full FER-2013 (folder or fer2013.csv); tests that need it skip without it."""
    path = fer_path()
    if not path.exists():
        pytest.skip(f"needs the full FER-2013, not found at {path}: set {DATA_ENV} to fer2013.csv "
                    "or its train/ + test/ folder (README: FER-2013)")
    return path


@pytest.fixture(scope="session")
def fer_data(fer_dir, tmp_path_factory):
    from train.data import load_fer2013

    return load_fer2013(fer_dir, cache_dir=tmp_path_factory.mktemp("fer-cache"))


@pytest.fixture(scope="session")
def faces_dir() -> Path:
    """The committed test faces: faces_dir/<class>/PublicTest_<id>.jpg (see its README.md)."""
    assert FACES_DIR.is_dir(), f"{FACES_DIR} missing: it is part of the repository"
    return FACES_DIR


@pytest.fixture(scope="session")
def face_crops(faces_dir) -> tuple[np.ndarray, np.ndarray]:
    """Every committed face: (n, 48, 48) uint8 gray and (n,) int64 labels, by class then file name."""
    images, labels = [], []
    for li, name in enumerate(LABELS):
        for p in sorted((faces_dir / name).glob("PublicTest_*.jpg")):
            image = cv2.imread(str(p), cv2.IMREAD_GRAYSCALE)
            assert image is not None and image.shape == (48, 48), p
            images.append(image)
            labels.append(li)
    return np.stack(images), np.asarray(labels, np.int64)


def _detector_file(range_: str) -> Path:
    path = DETECTORS.get(range_)
    if path is None:
        pytest.skip(f"the {range_}-range face detector is not installed: run `fer-edge models pull --range all` "
                    f"(or set {ENV_MODEL_DIR})")
    return path


@pytest.fixture(scope="session")
def detector_dir() -> Path:
    """The folder that holds the short-range detector, found as the runtime finds it."""
    return _detector_file("short").parent


@pytest.fixture(scope="session")
def full_detector() -> Path:
    """The full-range detector file; tests that need it skip without it."""
    return _detector_file("full")


@pytest.fixture(scope="session")
def emotion_model() -> Path:
    """The shipped int8 emotion model (with its .json sidecar)."""
    if not EMOTION_MODEL.is_file():
        pytest.fail(f"{EMOTION_MODEL} missing: the default model ships in models/")
    return EMOTION_MODEL

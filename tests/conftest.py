"""Shared fixtures: the real FER-2013 data and detector models from ../shared, the shipped model."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("FER_EDGE_SHARED", REPO.parent / "shared"))
FER_DIR = SHARED / "data" / "fer2013"
DETECTOR_DIR = SHARED / "models"
EMOTION_MODEL = REPO / "models" / "emotion_int8.tflite"


def pytest_configure(config):
    # The detector models come from the offline mirror, as a user would point at them.
    if DETECTOR_DIR.is_dir():
        os.environ.setdefault("FER_EDGE_MODEL_DIR", str(DETECTOR_DIR))


@pytest.fixture(scope="session")
def fer_dir() -> Path:
    if not FER_DIR.is_dir():
        pytest.fail(f"FER-2013 not found at {FER_DIR}; tests need ../shared/data/fer2013 (CI has it)")
    return FER_DIR


@pytest.fixture(scope="session")
def fer_data(fer_dir, tmp_path_factory):
    from train.data import load_fer2013

    return load_fer2013(fer_dir, cache_dir=tmp_path_factory.mktemp("fer-cache"))


@pytest.fixture(scope="session")
def detector_dir() -> Path:
    if not DETECTOR_DIR.is_dir():
        pytest.fail(f"detector models not found at {DETECTOR_DIR} (../shared/models)")
    return DETECTOR_DIR


@pytest.fixture(scope="session")
def emotion_model() -> Path:
    """The shipped int8 emotion model (with its .json sidecar)."""
    if not EMOTION_MODEL.is_file():
        pytest.fail(f"{EMOTION_MODEL} missing: the default model ships in models/")
    return EMOTION_MODEL

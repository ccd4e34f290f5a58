"""The detector tests' shared fixtures, built with the runtime tests' helpers (tests/edge/edge_runtime_helpers.py)."""

import pytest
from edge_runtime_helpers import fer_faces  # importable through tests/edge/conftest.py


@pytest.fixture(scope="module")
def faces(faces_dir):
    """(21, 48, 48) uint8 gray FER-2013 crops, three per class, and their labels."""
    return fer_faces(faces_dir, per_class=3)

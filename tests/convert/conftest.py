"""Small real fixtures for the convert tests: a FER-2013 subset folder and a tiny trained Keras model.

The subset copies a few real FER-2013 files per class into tmp (never into the repository);
the model is a few conv filters trained for a few steps, so its outputs are not uniform and
int8 calibration has real activation ranges to find.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from convert_helpers import build_tiny, make_fer_subset, write_meta

TRAIN_PER_CLASS = 80  # 560 Training images: enough for the CLI's 500-image minimum
TEST_PER_CLASS = 10  # per class in each of PublicTest and PrivateTest


@pytest.fixture(scope="session")
def fer_subset(fer_dir, tmp_path_factory) -> Path:
    return make_fer_subset(fer_dir, tmp_path_factory.mktemp("fer-subset"), TRAIN_PER_CLASS, TEST_PER_CLASS)


@pytest.fixture(scope="session")
def subset_data(fer_subset, tmp_path_factory):
    from train.data import load_fer2013

    return load_fer2013(fer_subset, cache_dir=tmp_path_factory.mktemp("subset-cache"))


@pytest.fixture(scope="session")
def tiny_model(subset_data, tmp_path_factory) -> Path:
    """A trained tiny 24x24x1 -> 7 model saved as run/best.keras with train_meta.json beside it."""
    import keras

    from edge.classify.preprocess import InputSpec, to_model_input

    run = tmp_path_factory.mktemp("run")
    path = run / "best.keras"
    meta = write_meta(path, subset_data.train.images)
    spec = InputSpec.from_json(json.loads(meta.read_text())["input"])
    model = build_tiny()
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy")
    x = to_model_input(subset_data.train.images, spec)
    model.fit(x, subset_data.train.labels, batch_size=64, epochs=8, verbose=0, shuffle=True)
    model.save(path)
    return path

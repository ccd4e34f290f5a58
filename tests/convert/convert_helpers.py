"""Helpers for the convert tests: a FER-2013 subset folder, training metadata, a tiny Keras model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from edge.labels import LABELS

# Smaller than FER's 48x48, so the tests also cover the from_fer resize of the contract.
SIDE = 24


def make_fer_subset(fer_dir: Path, out: Path, train_per_class: int, test_per_class: int) -> Path:
    """Copy the first files (sorted) of each class into out/train/<c>/ and out/test/<c>/."""
    for label in LABELS:
        src = sorted((fer_dir / "train" / label).iterdir())[:train_per_class]
        (out / "train" / label).mkdir(parents=True)
        for f in src:
            shutil.copyfile(f, out / "train" / label / f.name)
        (out / "test" / label).mkdir(parents=True)
        tests = sorted((fer_dir / "test" / label).iterdir())
        for prefix in ("PublicTest_", "PrivateTest_"):
            for f in [f for f in tests if f.name.startswith(prefix)][:test_per_class]:
                shutil.copyfile(f, out / "test" / label / f.name)
    return out


def write_meta(model_path: Path, train_images: np.ndarray, name: str = "train_meta.json",
               **overrides) -> Path:
    """The metadata `fer-edge train` writes beside its checkpoints (the fields convert reads)."""
    meta = {
        "arch": "tiny", "params": 0, "labels": list(LABELS),
        "input": {"height": SIDE, "width": SIDE, "channels": 1, "equalize": "hist", "from_fer": "resize",
                  "mean": 128.0, "std": round(float(train_images.std()), 2)},
        "crop": {"margin": 0.0, "shift_y": 0.0, "align": False},
        "best_public_accuracy": 0.3, "command": "test fixture",
    }
    meta.update(overrides)
    path = model_path.parent / name
    path.write_text(json.dumps(meta, indent=1))
    return path


def build_tiny(num_classes: int = len(LABELS), seed: int = 0):
    import keras
    from keras import layers

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((SIDE, SIDE, 1), name="image")
    x = layers.Conv2D(8, 3, strides=2, padding="same", use_bias=False)(inputs)
    x = layers.BatchNormalization()(x)
    x = layers.ReLU()(x)
    x = layers.Conv2D(16, 3, strides=2, padding="same", activation="relu")(x)
    x = layers.GlobalAveragePooling2D()(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="probs")(x)
    return keras.Model(inputs, outputs, name="tiny")

"""benchmarks/speed/classifier.py: the micro-benchmark on the shipped model, tiny iteration counts."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from benchmarks.speed import classifier as bc
from edge.labels import LABELS


@pytest.fixture(scope="module")
def private(face_crops):
    """40 committed FER-2013 faces (PublicTest): the benchmark's mechanics, not its accuracy figure."""
    crops, labels = face_crops
    return crops[:40], labels[:40]


def test_load_private_test(fer_dir):
    crops, labels = bc.load_private_test(fer_dir, limit=40)
    assert crops.shape == (40, 48, 48) and crops.dtype == np.uint8
    assert labels.shape == (40,) and labels.dtype == np.int64
    assert labels.min() >= 0 and labels.max() < len(LABELS)


def test_find_variants_needs_a_sidecar(emotion_model, tmp_path):
    shutil.copy(emotion_model, tmp_path / "emotion_int8.tflite")
    shutil.copy(emotion_model.with_suffix(".json"), tmp_path / "emotion_int8.json")
    shutil.copy(emotion_model, tmp_path / "orphan.tflite")  # no sidecar: skipped
    assert [p.name for p in bc.find_variants(tmp_path)] == ["emotion_int8.tflite"]


def test_bench_schema(emotion_model, private, tmp_path):
    crops, labels = private
    report = bc.bench_classifier([emotion_model], crops, labels, threads=(1, 2), batch_size=4, iters=3,
                                 warmup=1, peer="off", progress=False)
    assert report["kind"] == "classifier" and report["n_crops"] == 40 and report["peer"] is None
    (v,) = report["variants"]
    assert v["quantization"] == "int8" and v["size_kb"] > 0
    assert 0.0 <= v["accuracy"] <= 1.0 and v["n_eval"] == 40
    cells = {(t["threads"], t["mode"]): t for t in v["timings"]}
    assert set(cells) == {(1, "single"), (2, "single"), (1, "batch"), (2, "batch")}
    assert all(t["ms_per_face"] > 0 for t in cells.values())
    assert cells[(1, "batch")]["batch"] == 4 and cells[(1, "single")]["batch"] == 1
    paths = bc.write_outputs(report, tmp_path / "classifier.json")
    assert json.loads(paths["json"].read_text())["variants"][0]["name"] == "emotion_int8"
    md = paths["markdown"].read_text()
    assert "| emotion_int8 | int8 |" in md


def test_accuracy_matches_direct_classification(emotion_model, private):
    from edge.classify.classifier import EmotionClassifier

    crops, labels = private
    probs = EmotionClassifier(emotion_model).classify(crops)
    names = np.asarray(EmotionClassifier(emotion_model).labels)[probs.argmax(1)]
    expected = float((names == np.asarray(LABELS)[labels]).mean())
    assert bc.variant_accuracy(emotion_model, crops, labels) == pytest.approx(expected)

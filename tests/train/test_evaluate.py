"""`fer-edge evaluate`: the report's schema, its PNG, and the numbers against a direct computation."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edge.cli import main
from edge.classify.classifier import EmotionClassifier
from train.data import FerData
from train.evaluate import EvalError, accuracy_report, evaluate_model


@pytest.fixture(scope="module")
def small_data(fer_data):
    pick = lambda s: s.subset(np.arange(0, len(s), 40))  # noqa: E731
    return FerData(train=pick(fer_data.train), public=pick(fer_data.public), private=pick(fer_data.private),
                   source=fer_data.source, layout=fer_data.layout, split_note=fer_data.split_note)


def test_report_schema_and_png(tmp_path, small_data, emotion_model):
    out = tmp_path / "eval" / "private.json"
    report = evaluate_model(emotion_model, small_data, "private", tta="flip", json_out=out)
    d = json.loads(out.read_text())
    assert d["accuracy"] == report.data["accuracy"]
    assert {"accuracy", "n", "per_class", "confusion_row_normalised", "macro_f1", "tta_flip"} <= d.keys()
    assert d["n"] == len(small_data.private) and 0.0 <= d["accuracy"] <= 1.0
    assert set(d["per_class"]) == {"angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"}
    for c in d["per_class"].values():
        assert {"precision", "recall", "f1", "support"} <= c.keys()
    cm = np.array(d["confusion_row_normalised"])
    assert cm.shape == (7, 7)
    np.testing.assert_allclose(cm.sum(axis=1)[np.array(d["confusion_counts"]).sum(axis=1) > 0], 1.0, atol=1e-3)
    assert (out.parent / "private.png").read_bytes()[:4] == b"\x89PNG"
    # The headline equals a direct single-pass classification of the same images.
    probs = EmotionClassifier(emotion_model).classify(small_data.private.images)
    assert d["accuracy"] == pytest.approx((probs.argmax(1) == small_data.private.labels).mean(), abs=1e-4)


def test_accuracy_report_by_hand():
    y = np.array([0, 0, 1, 2])
    probs = np.eye(7, dtype=np.float32)[[0, 1, 1, 2]]
    r = accuracy_report(y, probs)
    assert r["accuracy"] == 0.75 and r["n"] == 4
    assert r["per_class"]["angry"] == {"precision": 1.0, "recall": 0.5, "f1": pytest.approx(0.6667, abs=1e-4),
                                       "support": 2}
    assert r["confusion_row_normalised"][0][:2] == [0.5, 0.5]


def test_cli_writes_json_and_prints(tmp_path, fer_dir, emotion_model, capsys):
    out = tmp_path / "pub.json"
    assert main(["evaluate", str(emotion_model), "--data", str(fer_dir), "--split", "public", "--json", str(out)]) == 0
    assert "PublicTest: accuracy" in capsys.readouterr().out
    assert json.loads(out.read_text())["n"] == 3589


@pytest.mark.parametrize("name, content, message", [
    ("missing.tflite", None, "not found"),
    ("model.onnx", b"x", "unknown model type"),
])
def test_bad_models(tmp_path, small_data, name, content, message):
    p = tmp_path / name
    if content is not None:
        p.write_bytes(content)
    with pytest.raises(EvalError, match=message):
        evaluate_model(p, small_data, "public")


def test_ferplus_majority_accuracy_on_the_same_images(tmp_path, small_data, emotion_model):
    """With a votes file the report also scores the images that have a FER+ majority, against it."""
    from edge.labels import LABELS

    s = small_data.public
    # A constructed votes file: every image's 10 votes go to one class, chosen to disagree with
    # the folder label on every third image; the first image has no majority (5/5 split).
    majority = np.where(np.arange(len(s)) % 3 == 0, (s.labels + 1) % 7, s.labels)
    cols = ["neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear"]
    ours = ["neutral", "happy", "surprise", "sad", "angry", "disgust", "fear"]
    votes = tmp_path / "votes.csv"
    lines = ["file,split," + ",".join(cols) + ",contempt,unknown,nf"]
    for i, (name, m) in enumerate(zip(s.names, majority)):
        counts = [0] * 7
        if i == 0:
            counts[0], counts[1] = 5, 5
        else:
            counts[ours.index(LABELS[m])] = 10
        lines.append(f"{name},PublicTest," + ",".join(map(str, counts)) + ",0,0,0")
    votes.write_text("\n".join(lines) + "\n")
    report = evaluate_model(emotion_model, small_data, "public", votes=votes).data["ferplus_majority"]
    probs = EmotionClassifier(emotion_model).classify(s.images)
    want = (probs.argmax(1) == majority)[1:].mean()
    assert report["n"] == len(s) - 1 and report["of_split"] == len(s)
    assert report["accuracy"] == pytest.approx(want, abs=1e-4)
    with pytest.raises(EvalError, match="--votes"):
        evaluate_model(emotion_model, small_data, "public", votes=tmp_path / "none.csv")

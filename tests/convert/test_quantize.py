"""convert/quantize.py: every mode round-trips through LiteRT, sidecars are complete, int8 agrees with Keras."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from convert_helpers import SIDE

from convert.quantize import (
    MIN_REP_SIZE,
    QUANT_MODES,
    convert_model,
    parse_modes,
    read_source,
    representative_images,
)
from convert.errors import ConvertError
from edge.atomic import sha256_file
from edge.classify.classifier import EmotionClassifier
from edge.interpreter import load_interpreter
from edge.labels import LABELS
from edge.classify.preprocess import CropPolicy, to_model_input
from edge.classify.sidecar import SidecarError, load_sidecar
from train.data import Split

REP_SIZE = 100  # tiny model, tiny subset: the library's documented min_rep_size lets tests go below 500


@pytest.fixture(scope="module")
def converted(tiny_model, subset_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("variants")
    crop = CropPolicy(margin=0.25, shift_y=0.05, align=True)
    return convert_model(tiny_model, QUANT_MODES, out, subset_data, name="emotion", crop=crop,
                         rep_size=REP_SIZE, min_rep_size=REP_SIZE, command="fer-edge convert test",
                         progress=False)


def test_exported_weights_rebuild_the_keras_model(tiny_model, keras_probs, tmp_path):
    import keras

    from convert.quantize import export_keras

    weights, arch = export_keras(tiny_model, tmp_path / "edge")
    assert weights.name.endswith(".weights.h5") and weights.stat().st_size < tiny_model.stat().st_size
    assert not [p for p in weights.parent.iterdir() if p.name.startswith(".")], "a temporary file was left"
    model = keras.models.model_from_json(arch.read_text())
    model.load_weights(weights)
    crops, want = keras_probs
    got = model.predict(to_model_input(crops, read_source(tiny_model).spec), verbose=0)
    np.testing.assert_allclose(got, want, atol=1e-5)


@pytest.fixture(scope="module")
def keras_probs(tiny_model, subset_data):
    import keras

    src = read_source(tiny_model)
    model = keras.models.load_model(tiny_model, compile=False)
    crops = np.concatenate([subset_data.public.images, subset_data.private.images])
    return crops, np.asarray(model.predict(to_model_input(crops, src.spec), verbose=0))


@pytest.mark.parametrize("mode", QUANT_MODES)
def test_every_mode_loads_in_litert_and_gives_probabilities(converted, subset_data, mode):
    (variant,) = [v for v in converted.variants if v.quantization == mode]
    assert variant.path.name == f"emotion_{mode}.tflite" and variant.sidecar.is_file()
    clf = EmotionClassifier(variant.path, num_threads=1)
    crops = subset_data.private.images[:9]
    probs = clf.classify(crops)
    assert probs.shape == (9, len(LABELS)) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=0.02)
    # Not a constant output: the tiny model was trained, so crops get different answers.
    assert np.ptp(probs, axis=0).max() > 0.01


def test_int8_is_full_integer(converted):
    (variant,) = [v for v in converted.variants if v.quantization == "int8"]
    interp = load_interpreter(variant.path, num_threads=1)
    assert interp.get_input_details()[0]["dtype"] == np.int8
    assert interp.get_output_details()[0]["dtype"] == np.int8
    assert converted.rep_size == REP_SIZE
    assert variant.card.extra["conversion"]["rep_size"] == REP_SIZE


def test_sizes_shrink_with_quantization(converted):
    size = {v.quantization: v.size_bytes for v in converted.variants}
    assert size["float16"] < size["float32"]
    assert size["int8"] < size["float16"] and size["dynamic"] < size["float16"]


@pytest.mark.parametrize("mode", QUANT_MODES)
def test_sidecar_schema(converted, tiny_model, mode):
    (variant,) = [v for v in converted.variants if v.quantization == mode]
    d = json.loads(variant.sidecar.read_text())
    assert d["format"] == "fer-edge-model/2"
    assert d["labels"] == list(LABELS)
    assert d["input"] == {"height": SIDE, "width": SIDE, "channels": 1, "color": "gray"}
    meta = json.loads((tiny_model.parent / "train_meta.json").read_text())
    assert d["normalization"]["mean"] == meta["input"]["mean"]
    assert d["normalization"]["std"] == meta["input"]["std"]
    assert d["normalization"]["equalize"] == meta["input"]["equalize"] == "hist"
    assert d["from_fer"] == meta["input"]["from_fer"] == "resize"
    assert d["crop"] == {"margin": 0.25, "shift_y": 0.05, "align": True}
    assert d["quantization"] == mode
    assert d["source_model"]["sha256"] == sha256_file(tiny_model) and len(d["source_model"]["sha256"]) == 64
    m = d["metrics"]
    for key in ("public_accuracy", "private_accuracy", "keras_public_accuracy", "keras_private_accuracy",
                "public_agreement_with_keras", "private_agreement_with_keras"):
        assert isinstance(m[key], float) and 0.0 <= m[key] <= 1.0, key
    # Only a quantized input has a calibrated range that can clip.
    assert ("public_input_clipped" in m) == (mode == "int8")
    assert d["command"] == "fer-edge convert test"
    assert d["arch"] == "tiny" and isinstance(d["params"], int)
    card = load_sidecar(variant.path)  # the runtime's reader accepts it
    assert card.quantization == mode and card.crop == CropPolicy(0.25, 0.05, True)


def test_sidecar_accuracy_matches_runtime(converted, subset_data):
    (variant,) = [v for v in converted.variants if v.quantization == "int8"]
    clf = EmotionClassifier(variant.path)
    pred = clf.classify(subset_data.private.images).argmax(axis=1)
    acc = float(np.mean(pred == subset_data.private.labels))
    assert variant.card.metrics["private_accuracy"] == pytest.approx(acc, abs=1e-4)


def test_int8_agrees_with_keras_on_real_faces(converted, keras_probs):
    crops, ref = keras_probs
    (variant,) = [v for v in converted.variants if v.quantization == "int8"]
    probs = EmotionClassifier(variant.path).classify(crops)
    diff = np.abs(probs - ref)
    assert float(diff.max()) <= 0.1 and float(diff.mean()) <= 0.02, (diff.max(), diff.mean())
    # A tiny model has near-ties that one quantization step flips; most faces must agree.
    agreement = float(np.mean(probs.argmax(1) == ref.argmax(1)))
    assert agreement >= 0.8, agreement


@pytest.mark.parametrize("field, edit, words", [
    ("labels", lambda d: d.update(labels=d["labels"][:-1]), "field 'labels' has 6 names"),
    ("input", lambda d: d["input"].update(height=64, width=64), "field 'input' says 64x64x1"),
    ("input", lambda d: d["input"].update(channels=3), "field 'input' says 24x24x3"),
])
def test_runtime_refuses_a_mismatched_sidecar(converted, tmp_path, field, edit, words):
    (variant,) = [v for v in converted.variants if v.quantization == "int8"]
    model = tmp_path / "m.tflite"
    shutil.copyfile(variant.path, model)
    d = json.loads(variant.sidecar.read_text())
    edit(d)
    model.with_suffix(".json").write_text(json.dumps(d))
    with pytest.raises(SidecarError, match=words):
        EmotionClassifier(model)


def _split(counts: list[int]) -> Split:
    """A synthetic Training split whose pixels carry their label and index (to check the picks)."""
    labels = np.concatenate([np.full(n, c, np.int64) for c, n in enumerate(counts)])
    images = np.zeros((len(labels), 48, 48), np.uint8)
    idx = np.arange(len(labels))
    images[:, 0, 0] = labels
    images[:, 0, 1], images[:, 0, 2] = idx % 256, idx // 256
    return Split(images, labels)


def test_representative_set_is_stratified_and_deterministic():
    counts = [400, 40, 410, 720, 480, 320, 500]  # FER-2013's shape: few disgust
    split = _split(counts)
    a = representative_images(split, 500)
    b = representative_images(split, 500)
    assert a.shape == (500, 48, 48) and np.array_equal(a, b)
    share = np.asarray(counts) / sum(counts)
    got = np.bincount(a[:, 0, 0], minlength=7)
    picked = a[:, 0, 1].astype(int) + 256 * a[:, 0, 2].astype(int)
    assert len(np.unique(picked)) == 500  # no image twice
    assert np.all(np.abs(got - 500 * share) <= 1), got
    assert got[1] >= 1
    assert not np.array_equal(a, representative_images(split, 500, seed=1))


@pytest.mark.parametrize("size, min_size, n, words", [
    (100, MIN_REP_SIZE, 1000, "--rep-size 100 < 500"),
    (500, MIN_REP_SIZE, 300, "the data has 300 Training images, 500 needed"),
    (50, 20, 30, "the data has 30 Training images, 50 needed"),
])
def test_representative_set_too_small(size, min_size, n, words):
    split = _split([n // 7 + (1 if c < n % 7 else 0) for c in range(7)])
    with pytest.raises(ConvertError, match="representative set too small") as exc:
        representative_images(split, size, min_size=min_size)
    assert words in str(exc.value)


@pytest.mark.parametrize("values, modes", [
    (None, ("int8",)),
    (["all"], QUANT_MODES),
    (["int8", "float32"], ("float32", "int8")),
    (["float16,dynamic", "float16"], ("float16", "dynamic")),
])
def test_parse_modes(values, modes):
    assert parse_modes(values) == modes


def test_parse_modes_refuses_unknown():
    with pytest.raises(ConvertError, match="unknown --quant int4"):
        parse_modes(["int4"])

"""The preprocessing contract: equalization, size fitting, and the sidecar as its full description."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from edge.classify.classifier import EmotionClassifier
from edge.interpreter import load_interpreter
from edge.classify.preprocess import CropPolicy, InputSpec, crop_face, fit_to_input, to_model_input
from edge.classify.sidecar import ModelCard, sidecar_path


def _third_party_input(fer_image: np.ndarray, sidecar: dict) -> np.ndarray:
    """What a reader of the sidecar alone would compute for one 48x48 gray FER-2013 image.

    Deliberately written from the JSON fields and OpenCV only, never from edge.classify.preprocess.
    """
    h, w = sidecar["input"]["height"], sidecar["input"]["width"]
    g = fer_image
    if g.shape != (h, w):
        if sidecar["from_fer"] == "center_crop":
            top, left = (g.shape[0] - h) // 2, (g.shape[1] - w) // 2
            g = g[top:top + h, left:left + w]
        else:
            g = cv2.resize(g, (w, h), interpolation=cv2.INTER_AREA)
    norm = sidecar["normalization"]
    if norm["equalize"] == "hist":
        g = cv2.equalizeHist(g)
    return ((g.astype(np.float32) - norm["mean"]) / norm["std"])[None, :, :, None]


@pytest.mark.parametrize("side, from_fer, equalize", [
    (48, "resize", "hist"),
    (40, "resize", "hist"),
    (40, "center_crop", "hist"),
    (44, "center_crop", "none"),
    (32, "resize", "none"),
])
def test_sidecar_alone_reproduces_the_model_input(face_crops, side, from_fer, equalize):
    spec = InputSpec(height=side, width=side, mean=127.3, std=73.9, equalize=equalize, from_fer=from_fer)
    card = ModelCard(labels=("a",) * 7, input=spec, crop=CropPolicy(), quantization="int8")
    sidecar = json.loads(json.dumps(card.to_json()))  # exactly what the file would hold
    images = face_crops[0][::7]
    ours = to_model_input(images, spec)
    theirs = np.concatenate([_third_party_input(g, sidecar) for g in images])
    assert ours.shape == (len(images), side, side, 1) and ours.dtype == np.float32
    np.testing.assert_allclose(ours, theirs, atol=1e-5)
    # The card survives its own JSON round trip.
    assert ModelCard.from_json(sidecar).input == spec


def test_shipped_model_probabilities_from_the_sidecar_alone(emotion_model, face_crops):
    """A third party with the .tflite and its .json gets our probabilities, bit for bit."""
    sidecar = json.loads(sidecar_path(emotion_model).read_text())
    interp = load_interpreter(emotion_model, num_threads=1)
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    clf = EmotionClassifier(emotion_model, num_threads=1, batch=False)
    images = face_crops[0][:40]
    ours = clf.classify(images)
    for g, p in zip(images, ours):
        x = _third_party_input(g, sidecar)
        if inp["dtype"] != np.float32:
            scale, zero = inp["quantization"]
            info = np.iinfo(inp["dtype"])
            x = np.clip(np.round(x / scale + zero), info.min, info.max).astype(inp["dtype"])
        interp.set_tensor(inp["index"], x)
        interp.invoke()
        y = interp.get_tensor(out["index"]).astype(np.float32)
        if out["dtype"] != np.float32:
            scale, zero = out["quantization"]
            y = (y - zero) * scale
        np.testing.assert_allclose(y[0], p, atol=1e-6)


def test_equalization_makes_plain_and_equalized_copies_alike(face_crops):
    """The Training copy is equalized and the test copies are plain; after the contract they meet."""
    plain = face_crops[0]  # PublicTest faces: plain, like every test image
    pre_equalized = np.stack([cv2.equalizeHist(g) for g in plain])
    spec = InputSpec(mean=128.0, std=74.0)
    a, b = to_model_input(plain, spec), to_model_input(pre_equalized, spec)
    gap = np.median(np.abs(a - b)) * spec.std
    raw_gap = np.median(np.abs(plain.astype(np.float32) - pre_equalized))
    assert gap <= 2.0 < raw_gap


def test_equalization_is_per_crop_not_per_batch(face_crops):
    images = face_crops[0][:8]
    spec = InputSpec(mean=128.0, std=74.0)
    together = to_model_input(images, spec)
    one_by_one = np.concatenate([to_model_input(g, spec) for g in images])
    np.testing.assert_array_equal(together, one_by_one)


@pytest.mark.parametrize("from_fer, expected", [("resize", "area"), ("center_crop", "crop")])
def test_fit_to_input_follows_from_fer(from_fer, expected):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (3, 48, 48), dtype=np.uint8)
    spec = InputSpec(height=40, width=40, from_fer=from_fer)
    got = fit_to_input(images, spec)
    want = (images[:, 4:44, 4:44] if expected == "crop"
            else np.stack([cv2.resize(g, (40, 40), interpolation=cv2.INTER_AREA) for g in images]))
    np.testing.assert_array_equal(got, want)
    # Crops already at the input size pass through untouched, whatever from_fer says.
    np.testing.assert_array_equal(fit_to_input(images[:, :40, :40], spec), images[:, :40, :40])


def test_center_crop_of_a_smaller_image_falls_back_to_resize():
    img = np.arange(32 * 32, dtype=np.uint8).reshape(1, 32, 32)
    spec = InputSpec(height=40, width=40, from_fer="center_crop")
    assert fit_to_input(img, spec).shape == (1, 40, 40)


@pytest.mark.parametrize("field, value", [("equalize", "clahe"), ("from_fer", "stretch"), ("std", 0.0)])
def test_input_spec_refuses_unknown_modes(field, value):
    with pytest.raises(ValueError, match=field):
        InputSpec(**{field: value})


def test_runtime_crop_of_a_1080p_frame_is_equalized_like_training(face_crops):
    """A FER face pasted at 4x into a 1080p frame, cropped by the runtime, meets the training input."""
    face = face_crops[0][7]
    frame = np.full((1080, 1920, 3), 60, np.uint8)
    big = cv2.resize(face, (192, 192), interpolation=cv2.INTER_CUBIC)
    frame[400:592, 900:1092] = big[:, :, None]
    spec = InputSpec(mean=128.0, std=74.0)
    crop = crop_face(frame, np.array([900, 400, 1092, 592]), spec, CropPolicy())
    x_runtime = to_model_input(crop, spec)
    x_train = to_model_input(face, spec)
    # Down- then up-sampling costs a little detail; equalization keeps the two within JPEG noise.
    assert np.median(np.abs(x_runtime - x_train)) * spec.std < 6.0

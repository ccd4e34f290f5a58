"""edge.classify.classifier: flip test-time augmentation in the runtime, against the evaluation's own."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.scenes.synthetic import make_scene_image
from edge import Pipeline
from edge.classify.classifier import EmotionClassifier
from edge_runtime_helpers import fer_faces


@pytest.fixture(scope="module")
def faces(faces_dir) -> np.ndarray:
    crops, _ = fer_faces(faces_dir, per_class=3)
    return crops  # (n, 48, 48) uint8 gray FER-2013 faces


@pytest.mark.parametrize("batch", [True, False])
@pytest.mark.parametrize("tta", ["none", "flip"])
def test_flip_tta_averages_each_face_with_its_mirror(emotion_model, faces, tta, batch):
    plain = EmotionClassifier(emotion_model, num_threads=1)
    clf = EmotionClassifier(emotion_model, num_threads=1, batch=batch, tta=tta)
    want = plain.classify(faces)
    if tta == "flip":
        want = (want + plain.classify(np.ascontiguousarray(faces[:, :, ::-1]))) / 2
    got = clf.classify(faces)
    assert got.shape == (len(faces), 7) and got.dtype == np.float32
    np.testing.assert_allclose(got, want, atol=1e-6)
    np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=0.02)  # still probabilities (int8 output steps)
    assert clf.classify(faces[:0]).shape == (0, 7)


def test_runtime_flip_tta_equals_the_evaluations(emotion_model, faces):
    """`fer-edge run --tta flip` gives a face the probabilities `fer-edge evaluate --tta flip` scores."""
    from train.evaluate import predict_probs

    np.testing.assert_allclose(EmotionClassifier(emotion_model, tta="flip").classify(faces),
                               predict_probs(emotion_model, faces, tta="flip"), atol=1e-6)


def test_flip_tta_changes_some_answers_and_keeps_most(emotion_model, faces):
    """Mirroring is not a no-op (faces are not symmetric), but the two agree on most faces."""
    single = EmotionClassifier(emotion_model).classify(faces).argmax(axis=1)
    flip = EmotionClassifier(emotion_model, tta="flip").classify(faces)
    assert not np.allclose(flip, EmotionClassifier(emotion_model).classify(faces), atol=1e-3)
    assert (flip.argmax(axis=1) == single).mean() >= 0.7


def test_unknown_tta_is_refused(emotion_model):
    with pytest.raises(ValueError, match="flip"):
        EmotionClassifier(emotion_model, tta="rotate")


def test_pipeline_with_flip_tta_on_a_1080p_frame(detector_dir, emotion_model, faces_dir):
    """The whole pipeline on a 1080p scene: the same faces, each face's probabilities the mean of
    its crop and the crop's mirror."""
    crops, labels = fer_faces(faces_dir, per_class=2)
    image, placed = make_scene_image(crops, labels, size=(1920, 1080), faces_per_frame=2, face_px=(560, 640), seed=4)
    kw = dict(model_path=str(detector_dir), emotion_model=str(emotion_model), smooth=False, scan="frame")
    with Pipeline.from_defaults(**kw) as plain, Pipeline.from_defaults(tta="flip", **kw) as tta:
        a, b = plain.process(image), tta.process(image)
        assert len(a.faces) == len(b.faces) >= 2
        np.testing.assert_array_equal(a.faces.xyxy, b.faces.xyxy)
        pixels = plain._face_pixels(image, a.faces)
        mirrored = np.ascontiguousarray(pixels[:, :, ::-1])
        want = (plain.classifier.classify_pixels(pixels) + plain.classifier.classify_pixels(mirrored)) / 2
        np.testing.assert_allclose(b.probs, want, atol=1e-6)

"""The hot path: int8 input by lookup table, gray conversion of face regions only, the reused crop buffer."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from benchmarks.scenes.synthetic import make_scene_image
from edge import Pipeline
from edge.classify.classifier import EmotionClassifier
from edge.classify.preprocess import crop_face, to_gray, to_model_input
from edge.types import Faces
from edge_runtime_helpers import fer_faces


@pytest.fixture(scope="module")
def classifier(emotion_model):
    return EmotionClassifier(emotion_model, num_threads=1)


def test_lookup_table_gives_the_same_int8_input_as_float_maths(classifier, faces_dir):
    spec = classifier.spec
    every_value = np.resize(np.arange(256, dtype=np.uint8), (1, spec.height, spec.width))
    faces, _ = fer_faces(faces_dir, per_class=2)
    # Every pixel step (equalization included), without the normalisation the table applies.
    crops = to_model_input(faces, replace(spec, mean=0.0, std=1.0))[..., 0]
    assert np.array_equal(crops, np.round(crops))  # the shared preprocessing's pixels are whole grey levels
    pixels = crops.astype(np.uint8)
    if classifier.input_dtype != np.float32:
        want = classifier.quantize_input(to_model_input(every_value, replace(spec, equalize="none")))
        np.testing.assert_array_equal(classifier._lut[every_value][..., None], want)
    np.testing.assert_allclose(classifier.classify_pixels(pixels),
                               classifier.classify_inputs(to_model_input(pixels, replace(spec, equalize="none"))),
                               atol=1e-6)
    assert classifier.classify_pixels(np.zeros((0, spec.height, spec.width), np.uint8)).shape == (0, 7)
    with pytest.raises(ValueError, match="uint8"):
        classifier.classify_pixels(pixels.astype(np.float32))


def test_face_region_gray_matches_the_whole_frame(detector_dir, emotion_model, faces_dir):
    faces, labels = fer_faces(faces_dir, per_class=2)
    image, placed = make_scene_image(faces, labels, size=(1920, 1080), faces_per_frame=8, face_px=(60, 140), seed=2)
    boxes = [f.box for f in placed]
    h, w = image.shape[:2]
    boxes += [(0, 0, 70, 80), (w - 60, h - 50, w, h), (900, -10, 990, 70)]  # crops past the frame's edges
    xyxy = np.asarray(boxes, np.int32)
    rng = np.random.default_rng(0)
    keypoints = (xyxy[:, None, :2] + rng.uniform(10, 50, (len(xyxy), 6, 2))).astype(np.float32)
    with Pipeline.from_defaults(emotion_model=str(emotion_model)) as pipe:
        spec, policy = pipe.card.input, pipe.card.crop
        # Compared before equalization, which can turn a one-level difference into two.
        pipe._pixel_spec = replace(pipe._pixel_spec, equalize="none")
        for policy in (policy, replace(policy, align=True)):
            pipe.card = replace(pipe.card, crop=policy)
            got = pipe._face_pixels(image, Faces(xyxy, np.ones(len(xyxy), np.float32), keypoints))
            gray = to_gray(image)
            want = np.stack([crop_face(gray, xyxy[i], spec, policy, keypoints[i]) for i in range(len(xyxy))])
            want = to_model_input(want, pipe._pixel_spec)[..., 0].astype(np.uint8)
            # crop_face warps in its window's coordinates: the same pixels, bit for bit.
            np.testing.assert_array_equal(got, want)


def test_crop_buffer_is_reused_and_grows_with_the_face_count(detector_dir, emotion_model):
    with Pipeline.from_defaults(emotion_model=str(emotion_model)) as pipe:
        image = np.full((480, 640, 3), 128, np.uint8)
        first = pipe._crops
        xyxy = np.asarray([[10 + 60 * i, 10, 60 + 60 * i, 60] for i in range(3)], np.int32)
        pipe._face_pixels(image, Faces(xyxy, np.ones(3, np.float32), np.zeros((3, 6, 2), np.float32)))
        assert pipe._crops is first
        xyxy = np.asarray([[5 * i, 10, 5 * i + 50, 60] for i in range(20)], np.int32)
        out = pipe._face_pixels(image, Faces(xyxy, np.ones(20, np.float32), np.zeros((20, 6, 2), np.float32)))
        assert out.shape[0] == 20 and pipe._crops.shape[0] >= 20

"""`fer-edge convert --flip-average`: the mirror average inside the graph equals the runtime's two passes."""

from __future__ import annotations

import numpy as np
import pytest

from convert.quantize import convert_model, verify_existing
from edge.classify.classifier import EmotionClassifier
from edge.classify.sidecar import load_sidecar

REP_SIZE = 100


@pytest.fixture(scope="module")
def pair(tiny_model, subset_data, tmp_path_factory):
    """The same trained model converted twice (float32 and int8): plain, and with the flip in the graph."""
    out = {}
    for flip in (False, True):
        d = tmp_path_factory.mktemp("flip" if flip else "plain")
        out[flip] = convert_model(tiny_model, ("float32", "int8"), d, subset_data, rep_size=REP_SIZE,
                                  min_rep_size=REP_SIZE, progress=False, flip_average=flip)
    return out


def _path(result, mode):
    return next(v.path for v in result.variants if v.quantization == mode)


@pytest.mark.parametrize("mode, atol", [
    ("float32", 1e-5),
    # Two int8 files calibrate their own output scales; within a few steps of 1/256 they agree.
    ("int8", 0.03),
])
def test_graph_average_equals_the_runtimes_two_pass_average(pair, face_crops, mode, atol):
    crops, _ = face_crops  # real FER faces, committed in tests/fixtures
    two_pass = EmotionClassifier(_path(pair[False], mode), tta="flip").classify(crops)
    in_graph = EmotionClassifier(_path(pair[True], mode)).classify(crops)
    np.testing.assert_allclose(in_graph, two_pass, atol=atol)
    assert np.mean(in_graph.argmax(1) == two_pass.argmax(1)) >= (1.0 if mode == "float32" else 0.9)


def test_one_invoke_gives_the_same_as_a_batch_and_is_mirror_symmetric(pair, face_crops):
    crops, _ = face_crops
    clf = EmotionClassifier(_path(pair[True], "int8"), batch=False)
    one_by_one = clf.classify(crops)
    np.testing.assert_array_equal(one_by_one, EmotionClassifier(_path(pair[True], "int8")).classify(crops))
    # A face and its mirror give one answer: the graph averages both orders of the same two passes.
    np.testing.assert_allclose(clf.classify(np.ascontiguousarray(crops[:, :, ::-1])), one_by_one, atol=0.02)


def test_sidecar_says_so_and_runtime_tta_adds_nothing(pair, face_crops):
    path = _path(pair[True], "int8")
    graph = load_sidecar(path).extra["graph"]
    assert graph["flip_average"] is True and "mirror" in graph["note"]
    assert "graph" not in load_sidecar(_path(pair[False], "int8")).extra
    clf = EmotionClassifier(path, tta="flip")
    assert clf.tta == "none" and clf.flip_in_graph
    crops, _ = face_crops
    np.testing.assert_array_equal(clf.classify(crops), EmotionClassifier(path).classify(crops))


def _kernels(path) -> int:
    """Conv kernels in the file: 4-D tensors with a spatial extent above 1 (weights, not activations)."""
    from edge.interpreter import load_interpreter

    interp = load_interpreter(path)
    return sum(1 for t in interp.get_tensor_details()
               if len(t["shape"]) == 4 and t["shape"][1] == 3 and t["shape"][2] == 3 and t["shape"][0] > 1)


@pytest.mark.parametrize("mode", ["float32", "int8"])
def test_weights_are_stored_once(pair, mode):
    plain, flip = _kernels(_path(pair[False], mode)), _kernels(_path(pair[True], mode))
    assert plain == 2 and flip == plain


def test_verify_existing_compares_with_the_flip_averaged_keras_model(pair, tiny_model, subset_data):
    out = _path(pair[True], "int8").parent
    report = verify_existing(tiny_model, ("float32", "int8"), out, subset_data, timing_faces=0, progress=False)
    f32 = next(v for v in report.variants if v.path.name.endswith("float32.tflite"))
    assert all(s.agreement >= 0.999 for s in f32.scores.values())

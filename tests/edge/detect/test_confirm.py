"""edge.detect.confirm: the second look and the confirmation rule, on real faces and real non-faces."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from benchmarks.scenes.synthetic import make_scene_image
from benchmarks.scenes.threshold import negative_frames
from edge.detect.confirm import (MIN_EYE_RATIO, MIN_EYE_RATIO_LARGE, PART_MIN_RATIO, SMALL_LOOK_MIN_PX, UNCERTAIN_YAW, SecondLook, accept, face_geometry,
                                 part_of, uncertain)
from edge.detect.factory import DetectorConfig, make_detector
from edge.detect.frame import BlazeFaceDetector
from edge.detect.windows import WindowNets
from edge_runtime_helpers import fer_faces

SHORT = "blaze_face_short_range.tflite"


@pytest.fixture(scope="module")
def faces(faces_dir):
    return fer_faces(faces_dir, per_class=8)


@pytest.fixture(scope="module")
def second_look(detector_dir):
    nets = WindowNets(str(detector_dir / SHORT), num_threads=1)
    yield SecondLook(nets)
    nets.close()


def _scene(faces, i: int, side: int, size=(640, 480)):
    images, labels = faces
    image, truth = make_scene_image(images[i:i + 1], labels[i:i + 1], size=size, faces_per_frame=1,
                                    face_px=(side, side), seed=i, background="room")
    return image, np.array(truth[0].box, np.float32)


def _noise_frame():
    return next(iter(negative_frames("noise", (640, 480), 1, seed=0)))


NO_KNOWN = np.zeros((0, 4), np.float32)
TEST_CARD = sorted((Path(__file__).resolve().parents[2] / "fixtures" / "testcard").glob("*.jpg"))


def _frontal(box: np.ndarray, eye_ratio: float = 0.42, yaw: float = 0.0) -> np.ndarray:
    """(6, 2) keypoints of a face in `box` with this eye distance (over the width) and turn."""
    x1, y1, x2, y2 = (float(v) for v in box)
    w, cx = x2 - x1, (x1 + x2) / 2
    eye = eye_ratio * w
    kp = [(cx - eye / 2, y1 + 0.4 * w), (cx + eye / 2, y1 + 0.4 * w), (cx + yaw * eye, y1 + 0.6 * w),
          (cx, y1 + 0.78 * w), (x1, y1 + 0.45 * w), (x2, y1 + 0.45 * w)]
    return np.array(kp, np.float32)


@pytest.mark.parametrize("case, score, known, want", [
    ("face, new, unsure: the second look confirms it", 0.55, False, True),
    ("noise, new, under the low score: rejected", 0.45, False, False),
    ("face, new, sure: kept without a second look", 0.80, False, True),
    ("face, known track, low score: continues", 0.52, True, True),
    ("face, known track, under the low score: dropped", 0.45, True, False),
    ("noise, new, unsure: the second look rejects it", 0.55, False, False),
    ("noise, known track, low score: continues (hysteresis)", 0.55, True, True),
])
def test_accept_confirms_or_rejects_candidates(faces, second_look, case, score, known, want):
    if case.startswith("face"):
        image, box = _scene(faces, 16, 200)
    else:
        image, box = _noise_frame(), np.array([315, 226, 559, 469], np.float32)  # where noise fires the network
    keep = accept(image, box[None], _frontal(box)[None], np.array([score], np.float32),
                  box[None] + 3 if known else NO_KNOWN,
                  keep_score=0.5, sure_score=0.75, second_look=second_look)
    assert bool(keep[0]) is want, case


def test_without_a_second_look_only_sure_new_candidates_pass(faces):
    image, box = _scene(faces, 16, 200)
    keep = accept(image, np.stack([box, box + 300]), np.stack([_frontal(box), _frontal(box + 300)]),
                  np.array([0.6, 0.8], np.float32), NO_KNOWN,
                  keep_score=0.5, sure_score=0.75, second_look=None)
    assert keep.tolist() == [False, True]


@pytest.mark.parametrize("i, side", [(16, 200), (14, 200), (8, 200)])
def test_a_still_whose_only_face_scores_between_the_thresholds_is_found(detector_dir, faces, i, side):
    """The old whole-frame default (0.65) drops these faces; the default scan keeps the candidate
    (>= 0.5) and finds it after a second look, though it is not sure (< 0.75)."""
    image, box = _scene(faces, i, side)
    with BlazeFaceDetector(detector_dir / SHORT, num_threads=1, score_threshold=0.3) as whole:
        old = whole.detect(image)
    assert len(old) == 1 and 0.5 <= old.score[0] < 0.65
    with make_detector(DetectorConfig(model_path=str(detector_dir / SHORT)), threads=1) as det:
        found = det.detect(image)
        assert det.detector.second_look.looks > 0
    assert len(found) == 1 and found.score[0] < 0.75
    x1, y1, x2, y2 = found.xyxy[0]
    assert box[0] <= (x1 + x2) / 2 <= box[2] and box[1] <= (y1 + y2) / 2 <= box[3]


def test_face_free_noise_gets_no_face_from_the_default_scan(detector_dir):
    """Colour noise fires one whole-frame pass at >= 0.5 in many frames; the default scan's
    candidates there are not confirmed."""
    frames = list(negative_frames("noise", (640, 480), 20, seed=0))
    with BlazeFaceDetector(detector_dir / SHORT, num_threads=1, score_threshold=0.5) as whole:
        fired = sum(len(whole.detect(f)) > 0 for f in frames)
    assert fired >= 3
    with make_detector(DetectorConfig(model_path=str(detector_dir / SHORT)), threads=1) as det:
        assert sum(len(det.detect(f)) for f in frames) == 0


@pytest.mark.parametrize("path", TEST_CARD, ids=lambda p: p.stem)
def test_chromiums_test_card_is_no_face_in_the_web_still_path(detector_dir, path):
    """Frames of Chromium's fake camera as the webcam page uploads them. The timestamp there is a
    candidate just under the default threshold that mostly passes the keypoint check and the second
    look: at --score-threshold 0.4 it is boxed (in all but one frame, whose keypoints already fail
    the check), so the frames still probe the rule. At the default, a new candidate under the
    threshold must also be found in a window in which it is small, and each frame, a fresh still
    (as /api/predict runs it), has no face."""
    assert len(TEST_CARD) == 6
    image = cv2.imread(str(path))
    assert image.shape == (480, 640, 3)
    with make_detector(DetectorConfig(model_path=str(detector_dir / SHORT), score_threshold=0.4), threads=1) as low:
        low.reset()
        fooled = low.detect(image)
    assert len(fooled) == (0 if path.stem.endswith("0210") else 1)
    assert all(0.4 <= s < 0.5 for s in fooled.score)
    with make_detector(DetectorConfig(model_path=str(detector_dir / SHORT)), threads=1) as det:
        det.reset()
        assert len(det.detect(image)) == 0


@pytest.mark.parametrize("i, blur_sigma", [(16, 5), (8, 11), (14, 13)])
def test_a_known_track_survives_a_frame_at_the_lower_score(detector_dir, emotion_model, faces, i, blur_sigma):
    """A blurred frame whose face a fresh look does not accept (not sure, not confirmed) keeps the
    face of the track it continues, with the same id: hysteresis, not one global threshold."""
    from edge.pipeline import Pipeline

    image, _ = _scene(faces, i, 200)
    blurred = cv2.GaussianBlur(image, (0, 0), blur_sigma)
    with make_detector(DetectorConfig(model_path=str(detector_dir / SHORT)), threads=1) as fresh:
        assert len(fresh.detect(blurred)) == 0
    with Pipeline.from_defaults(model_path=str(detector_dir / SHORT), emotion_model=str(emotion_model),
                                threads=1) as pipe:
        first = pipe.process(image)
        second = pipe.process(blurred)
    assert len(first.faces) == 1 and len(second.faces) == 1
    assert 0.5 <= second.faces.score[0] < 0.75
    assert second.track_ids.tolist() == first.track_ids.tolist()


def test_a_new_face_under_the_low_score_is_looked_at_small_too(faces, second_look):
    """Under the low score a new face costs one more window (it is 32 input px wide there), and a
    real face is found in it."""
    image, box = _scene(faces, 6, 200)
    looks = {}
    for score in (0.45, 0.55):
        before = second_look.looks
        keep = accept(image, box[None], _frontal(box)[None], np.array([score], np.float32), NO_KNOWN,
                      keep_score=0.5, sure_score=0.75, second_look=second_look)
        assert keep[0]
        looks[score] = second_look.looks - before
    assert looks[0.45] == looks[0.55] + 1


@pytest.mark.parametrize("case, want, want_looks", [
    ("a real face, sure at 72 px: confirmed without the 48 px window", True, 1),
    ("colour noise that fires the network: not found at 72 px, no second window", False, 1),
])
def test_the_second_look_starts_at_72_px_and_stops_when_sure(faces, second_look, case, want, want_looks):
    """The 72 px window, the network's favourite zoom, runs first; a candidate sure there needs no
    48 px window, and one it does not find there needs none either."""
    if case.startswith("a real face"):
        image, box = _scene(faces, 16, 200)
        assert second_look.score(image, box, 72) >= 0.75
        assert second_look.score(image, box, 48) >= second_look.verify_score  # would pass that one too
    else:
        image, box = _noise_frame(), np.array([315, 226, 559, 469], np.float32)  # where noise fires the network
        assert second_look.score(image, box, 72) < second_look.verify_score
    before = second_look.looks
    assert second_look.confirms(image, box, sure_score=0.75) is want, case
    assert second_look.looks - before == want_looks, case
    before = second_look.looks
    assert second_look.confirms(image, box) is want, case  # without a sure score every window runs
    assert second_look.looks - before == (2 if want else 1), case


def test_a_candidate_whose_eyes_are_too_close_for_its_box_is_not_looked_at_again(faces, second_look):
    """The keypoint check comes before the second look: a real face with implausible keypoints
    (as the network gives on a test card's clock) is not confirmed, and costs no window."""
    image, box = _scene(faces, 16, 200)
    looks = second_look.looks
    keep = accept(image, box[None], _frontal(box, eye_ratio=MIN_EYE_RATIO - 0.05)[None], np.array([0.6], np.float32),
                  NO_KNOWN, keep_score=0.5, sure_score=0.75, second_look=second_look)
    assert not keep[0] and second_look.looks == looks


@pytest.mark.parametrize("side, eye_ratio, want_looks", [
    (200, MIN_EYE_RATIO_LARGE + 0.02, 1),  # large, plausible: looked at
    (200, (MIN_EYE_RATIO + MIN_EYE_RATIO_LARGE) / 2, 0),  # large, between the bounds: no look (the clock's case)
    (SMALL_LOOK_MIN_PX - 8, (MIN_EYE_RATIO + MIN_EYE_RATIO_LARGE) / 2, 1),  # small, between: looked at
    (SMALL_LOOK_MIN_PX - 8, MIN_EYE_RATIO - 0.02, 0),  # small, too close: no look
])
def test_the_keypoint_check_is_tighter_for_large_boxes(faces, second_look, side, eye_ratio, want_looks):
    """Large boxes have precise keypoints and take the tighter bound; small crowd faces keep the lower one."""
    image, box = _scene(faces, 16, side)
    looks = second_look.looks
    accept(image, box[None], _frontal(box, eye_ratio=eye_ratio)[None], np.array([0.6], np.float32),
           NO_KNOWN, keep_score=0.5, sure_score=0.75, second_look=second_look)
    assert second_look.looks - looks == want_looks


@pytest.mark.parametrize("yaw, want", [(0.0, False), (0.2, False), (-UNCERTAIN_YAW - 0.1, True), (0.8, True)])
def test_a_face_turned_too_far_is_uncertain(yaw, want):
    box = np.array([100, 100, 200, 200], np.float32)
    kp = _frontal(box, yaw=yaw)
    ratio, got_yaw = face_geometry(box[None], kp[None])
    assert ratio[0] == pytest.approx(0.42) and got_yaw[0] == pytest.approx(yaw, abs=1e-4)
    assert bool(uncertain(box[None], kp[None])[0]) is want


@pytest.mark.parametrize("case, second, want_kept, want_looks", [
    ("a box on the face's nose: part of the kept face, no look", lambda b: _inner(b, 0.3), False, 0),
    ("a box on an eye, off-centre: part of the kept face, no look",
     lambda b: _inner(b, 0.3, dx=-0.2, dy=-0.15), False, 0),
    ("a larger box around the face: looked at, as before", lambda b: _inner(b, 1.6), None, 1),
    ("a second face beside it: looked at, and kept", None, True, 2),
])
def test_a_second_box_on_a_kept_face_costs_no_look(faces, second_look, case, second, want_kept, want_looks):
    """One face seen at several zooms can give a tight box and a box on its nose or an eye, which
    overlap too little to be merged: the smaller one lies inside the kept face and is dropped
    without a window. Anything else still gets its second look."""
    images, labels = faces
    image, truth = make_scene_image(images[16:18], labels[16:18], size=(640, 480), faces_per_frame=2,
                                    face_px=(160, 160), seed=3, background="room")
    boxes = sorted((np.array(f.box, np.float32) for f in truth), key=lambda b: b[0])
    face = boxes[0]
    other = boxes[1] if second is None else second(face)
    looks = second_look.looks
    keep = accept(image, np.stack([face, other]), np.stack([_frontal(face), _frontal(other)]),
                  np.array([0.8, 0.6], np.float32), NO_KNOWN, keep_score=0.5, sure_score=0.75,
                  second_look=second_look)
    assert keep[0], case
    if want_kept is not None:
        assert bool(keep[1]) is want_kept, case
    assert (second_look.looks - looks > 0) is (want_looks > 0), case


def _inner(box: np.ndarray, frac: float, dx: float = 0.0, dy: float = 0.0) -> np.ndarray:
    """A square box `frac` of `box`'s side, centred at its centre shifted by (dx, dy) sides."""
    x1, y1, x2, y2 = (float(v) for v in box)
    side = x2 - x1
    cx, cy = (x1 + x2) / 2 + dx * side, (y1 + y2) / 2 + dy * side
    half = frac * side / 2
    return np.array([cx - half, cy - half, cx + half, cy + half], np.float32)


@pytest.mark.parametrize("case, box, want", [
    ("the nose, a third of the face", [135, 135, 168, 168], True),
    ("an eye, a quarter of the face, off-centre", [110, 115, 135, 140], True),
    ("the face again, as large", [102, 100, 202, 200], True),
    ("a larger box around it: the face may be the part", [50, 50, 250, 250], False),
    ("centre outside: another face beside it", [190, 100, 290, 200], False),
    ("a tenth of the face: a face far behind, or in a false box", [145, 145, 155, 155], False),
])
def test_part_of_needs_the_centre_inside_a_box_larger_but_not_much_larger(case, box, want):
    face = np.array([[100, 100, 200, 200]], np.float32)
    assert part_of(np.array(box, np.float32), face) is want, case
    assert not part_of(np.array(box, np.float32), np.zeros((0, 4), np.float32))
    assert PART_MIN_RATIO * 100 <= 25  # the quarter-face case above is a part


def test_a_small_face_inside_a_kept_false_box_still_gets_its_look(faces, second_look):
    """A false box kept around a real face much smaller than it (a textured background's) must not
    swallow the face: the face is looked at, and kept."""
    images, labels = faces
    image, truth = make_scene_image(images[16:17], labels[16:17], size=(640, 480), faces_per_frame=1,
                                    face_px=(48, 48), seed=3, background="room")
    face = np.array(truth[0].box, np.float32)
    cx, cy = (face[:2] + face[2:]) / 2
    false_box = np.array([cx - 120, cy - 110, cx + 130, cy + 140], np.float32)
    looks = second_look.looks
    keep = accept(image, np.stack([false_box, face]), np.stack([_frontal(false_box), _frontal(face)]),
                  np.array([0.8, 0.6], np.float32), NO_KNOWN, keep_score=0.5, sure_score=0.75,
                  second_look=second_look)
    assert keep.tolist() == [True, True] and second_look.looks > looks

"""Face detection on real FER-2013 faces placed into frames built at test time, both backends."""

from __future__ import annotations

import importlib.util

import cv2
import numpy as np
import pytest

from edge.boxes import iou_matrix, weighted_nms
from edge.detect.blazeface import decode
from edge.detect.factory import DetectorConfig, make_detector
from edge.detect.frame import BlazeFaceDetector, MediaPipeDetector
from edge.types import Faces

SHORT = "blaze_face_short_range.tflite"
N_FACES = 24  # the first FER-2013 PublicTest "happy" faces, sorted by file name
SIDEWAYS = {"PublicTest_11107518.jpg"}  # a face lying on its side: "eyes above mouth" does not hold
RIGHT_EYE, LEFT_EYE, NOSE, MOUTH, RIGHT_EAR, LEFT_EAR = range(6)


@pytest.fixture(scope="module")
def faces48(faces_dir) -> list[np.ndarray]:
    """(48, 48) uint8 gray FER-2013 crops."""
    paths = [p for p in sorted((faces_dir / "happy").glob("PublicTest_*.jpg"))
             if p.name not in SIDEWAYS][:N_FACES]
    assert len(paths) == N_FACES
    return [cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p in paths]


# These tests check geometry and decoding on tight FER crops, which score lower than real faces:
# they use MediaPipe's own default, 0.5, not the runtime's stricter DEFAULT_SCORE_THRESHOLD.
MEDIAPIPE_THRESHOLD = 0.5


@pytest.fixture(scope="module")
def short(detector_dir):
    with BlazeFaceDetector(detector_dir / SHORT, num_threads=1, score_threshold=MEDIAPIPE_THRESHOLD) as det:
        yield det


@pytest.fixture(scope="module")
def full(full_detector):
    with BlazeFaceDetector(full_detector, full_range=True, num_threads=1,
                           score_threshold=MEDIAPIPE_THRESHOLD) as det:
        yield det


def scene(face48: np.ndarray, size: int, frame_hw: tuple[int, int], xy: tuple[int, int],
          background: str = "gray", tint_bgr=(1.0, 1.0, 1.0)) -> tuple[np.ndarray, np.ndarray]:
    """A (H, W, 3) uint8 BGR frame with the face upscaled to size x size at xy; and its xyxy."""
    h, w = frame_hw
    if background == "gray":
        image = np.full((h, w, 3), 127, np.uint8)
    else:
        image = np.random.default_rng(size + h + w).integers(0, 256, (h, w, 3), dtype=np.uint8)
    face = cv2.resize(face48, (size, size), interpolation=cv2.INTER_CUBIC).astype(np.float32)
    x, y = xy
    image[y:y + size, x:x + size] = np.clip(face[:, :, None] * np.float32(tint_bgr), 0, 255).astype(np.uint8)
    return image, np.array([x, y, x + size, y + size], np.float32)


def inside_fraction(box: np.ndarray, region: np.ndarray) -> float:
    """Share of box's area that lies inside region (both xyxy)."""
    box = box.astype(np.float64)
    iw = max(0.0, min(box[2], region[2]) - max(box[0], region[0]))
    ih = max(0.0, min(box[3], region[3]) - max(box[1], region[1]))
    return iw * ih / max((box[2] - box[0]) * (box[3] - box[1]), 1e-9)


def assert_face_geometry(faces: Faces, i: int, region: np.ndarray) -> None:
    box, kp = faces.xyxy[i].astype(np.float64), faces.keypoints[i]
    side = region[2] - region[0]
    # The box lies on the placed face and is face-sized. FER crops are tight (the model may
    # extend the box past the crop's edge), so the box and the crop do not coincide.
    centre_offset = np.abs((box[:2] + box[2:]) / 2 - (region[:2] + region[2:]) / 2)
    assert (centre_offset <= 0.2 * side).all(), (box, region)
    assert inside_fraction(box, region) >= 0.6, (box, region)
    assert 0.5 * side <= box[2] - box[0] <= 1.5 * side, (box, region)
    # Eyes, nose and mouth inside the box; the ears (tragions) sit on its edges, even past
    # the frame's edge when the box is clipped, but the right one on the image's left.
    for k in (RIGHT_EYE, LEFT_EYE, NOSE, MOUTH):
        assert box[0] <= kp[k, 0] <= box[2] and box[1] <= kp[k, 1] <= box[3], (k, kp[k], box)
    assert kp[RIGHT_EAR, 0] < kp[LEFT_EAR, 0]
    assert kp[RIGHT_EYE, 1] < kp[MOUTH, 1] and kp[LEFT_EYE, 1] < kp[MOUTH, 1]  # eyes above the mouth
    assert kp[RIGHT_EYE, 0] < kp[LEFT_EYE, 0]  # the subject's right eye is on the image's left


@pytest.mark.parametrize("background", ["gray", "noise"])
def test_short_range_finds_placed_faces(short, faces48, background):
    found = 0
    for face in faces48:
        image, region = scene(face, 200, (480, 640), (300, 200), background)
        faces = short.detect(image)
        assert isinstance(faces, Faces) and faces.xyxy.dtype == np.int32
        assert faces.keypoints.shape == (len(faces), 6, 2)
        assert len(faces) <= 1, faces.xyxy
        if len(faces):
            found += 1
            assert 0.5 <= faces.score[0] <= 1.0
            assert_face_geometry(faces, 0, region)
    assert found >= 0.9 * len(faces48)


def test_two_faces_in_one_frame(short, faces48):
    image, left = scene(faces48[0], 180, (480, 640), (40, 150))
    right_face, right = scene(faces48[3], 180, (480, 640), (400, 100))
    image[100:280, 400:580] = right_face[100:280, 400:580]
    faces = short.detect(image)
    assert len(faces) == 2
    order = np.argsort(faces.xyxy[:, 0])
    assert_face_geometry(faces, order[0], left)
    assert_face_geometry(faces, order[1], right)


# (frame height, frame width, face x, face y): the long side is 640 in all, so only the
# letterbox padding differs (top/bottom for landscape, left/right for portrait).
FRAMES = [(480, 640, 100, 80), (360, 640, 400, 100), (640, 360, 100, 400), (360, 640, 20, 140)]


def test_letterboxing_maps_back_to_frame_pixels(short, faces48):
    worst_iou, worst_keypoint_px = [], []
    for face in faces48[:12]:
        boxes, keypoints = [], []
        for h, w, x, y in FRAMES:
            image, region = scene(face, 220, (h, w), (x, y))
            faces = short.detect(image)
            assert len(faces) == 1, (h, w)
            assert_face_geometry(faces, 0, region)
            boxes.append(faces.xyxy[0] - np.array([x, y, x, y]))  # relative to the placed face
            keypoints.append(faces.keypoints[0] - np.array([x, y]))
        boxes = np.array(boxes, np.float64)
        worst_iou.append(iou_matrix(boxes, boxes).min())
        worst_keypoint_px.append(np.abs(np.array(keypoints) - keypoints[0]).max())
    # The same face gives the same box wherever it sits and whatever the padding, up to the
    # network's own jitter when the face moves against its anchor grid (a few pixels); a
    # mapping error (padding not removed: 80 px here) would be far larger.
    assert min(worst_iou) >= 0.6 and np.median(worst_iou) >= 0.8, worst_iou
    assert np.median(worst_keypoint_px) <= 15, worst_keypoint_px


def test_boxes_are_clipped_to_the_frame(short, faces48):
    image, region = scene(faces48[0], 200, (480, 640), (0, 0))
    image = np.ascontiguousarray(image[40:, 40:])  # the face runs off the top-left corner
    faces = short.detect(image)
    assert len(faces) == 1
    assert faces.xyxy.min() >= 0 and (faces.xyxy[:, 2] <= image.shape[1]).all()
    assert (faces.xyxy[:, 3] <= image.shape[0]).all()


def test_views_of_a_frame_are_accepted(short, faces48):
    image, _ = scene(faces48[0], 200, (480, 640), (300, 200))
    for view in (image[40:, 100:], image[::-1, ::-1], image[:, :, :]):  # strided, not contiguous
        ours, copy = short.detect(view), short.detect(np.ascontiguousarray(view))
        assert len(ours) == 1
        np.testing.assert_array_equal(ours.xyxy, copy.xyxy)


@pytest.mark.parametrize("range_", ["short", "full"])
@pytest.mark.parametrize("fill", ["gray", "black", "gradient"])
def test_no_face_no_detection(request, range_, fill):
    # (Pure noise is no good here: BlazeFace sees a face in some noise at ~0.53, as MediaPipe does.)
    det = request.getfixturevalue(range_)
    image = {"gray": np.full((480, 640, 3), 127, np.uint8), "black": np.zeros((480, 640, 3), np.uint8),
             "gradient": np.broadcast_to(np.linspace(0, 255, 640, dtype=np.uint8)[None, :, None],
                                         (480, 640, 3)).copy()}[fill]
    faces = det.detect(image)
    assert len(faces) == 0
    assert faces.xyxy.shape == (0, 4) and faces.score.shape == (0,) and faces.keypoints.shape == (0, 6, 2)


def test_score_threshold_filters(detector_dir, short, faces48):
    with BlazeFaceDetector(detector_dir / SHORT, score_threshold=0.85) as strict:
        kept = dropped = 0
        for face in faces48:
            image, _ = scene(face, 200, (480, 640), (300, 200))
            loose, tight = short.detect(image), strict.detect(image)
            assert (tight.score >= 0.85).all()
            expected = loose.score[loose.score >= 0.85]
            np.testing.assert_allclose(np.sort(tight.score), np.sort(expected), atol=1e-5)
            kept += len(tight)
            dropped += len(loose) - len(tight)
    assert kept > 0 and dropped > 0  # the table really exercised both sides


def test_full_range_finds_small_faces(short, full, faces48):
    """110-px faces in 1280x720 shrink to ~11 px for short range, ~16 px for full range."""
    found_full = found_short = 0
    for face in faces48:
        image, region = scene(face, 110, (720, 1280), (900, 500))
        faces = full.detect(image)
        for i in range(len(faces)):
            assert inside_fraction(faces.xyxy[i], region) >= 0.7, (faces.xyxy[i], region)
        found_full += len(faces) > 0
        found_short += len(short.detect(image)) > 0
    assert found_full >= 3 and found_full > found_short, (found_full, found_short)


def test_full_range_on_large_faces(full, faces48):
    found = 0
    for face in faces48[:12]:
        image, region = scene(face, 150, (480, 640), (100, 80))
        faces = full.detect(image)
        if len(faces):
            found += 1
            assert_face_geometry(faces, 0, region)
    assert found >= 6


# Pure functions: MediaPipe's decoding and weighted NMS on hand-made numbers.

def test_decode_offsets_from_anchor_centre():
    raw = np.zeros((1, 16), np.float32)
    raw[0, :4] = (12.8, -6.4, 64.0, 32.0)  # centre +0.1, -0.05; size 0.5 x 0.25 (input 128)
    raw[0, 4:6] = (-12.8, 12.8)
    boxes, keypoints = decode(raw, np.array([[0.5, 0.5]], np.float32), 128)
    np.testing.assert_allclose(boxes[0], (0.35, 0.325, 0.85, 0.575), atol=1e-6)
    np.testing.assert_allclose(keypoints[0, 0], (0.4, 0.6), atol=1e-6)
    np.testing.assert_allclose(keypoints[0, 1:], 0.5, atol=1e-6)


NMS_CASES = [
    # boxes, scores, expected boxes, expected scores
    pytest.param([[0, 0, 10, 10], [1, 0, 11, 10]], [0.9, 0.6],
                 [[0.4, 0, 10.4, 10]], [0.9], id="overlap-averaged-by-score"),
    pytest.param([[0, 0, 10, 10], [20, 20, 30, 30]], [0.6, 0.9],
                 [[20, 20, 30, 30], [0, 0, 10, 10]], [0.9, 0.6], id="disjoint-kept-best-first"),
    pytest.param([[0, 0, 10, 10], [6, 0, 16, 10]], [0.9, 0.8],  # IoU 0.25 <= 0.3
                 [[0, 0, 10, 10], [6, 0, 16, 10]], [0.9, 0.8], id="low-overlap-kept"),
    pytest.param([[0, 0, 10, 10], [2, 0, 12, 10], [4, 0, 14, 10]], [0.5, 0.5, 1.0],
                 [[2.5, 0, 12.5, 10]], [1.0], id="cluster-around-best"),
]


@pytest.mark.parametrize("boxes, scores, want_boxes, want_scores", NMS_CASES)
def test_weighted_nms(boxes, scores, want_boxes, want_scores):
    boxes = np.asarray(boxes, np.float32)
    keypoints = np.repeat(boxes[:, None, :2], 6, axis=1)  # keypoints ride along with the boxes
    out_boxes, out_kps, out_scores = weighted_nms(boxes, keypoints, np.asarray(scores, np.float32), 0.3)
    np.testing.assert_allclose(out_boxes, want_boxes, atol=1e-5)
    np.testing.assert_allclose(out_scores, want_scores, atol=1e-6)
    np.testing.assert_allclose(out_kps, np.repeat(np.asarray(want_boxes)[:, None, :2], 6, axis=1), atol=1e-5)


# Construction, ranges and the MediaPipe Tasks backend.

@pytest.mark.parametrize("fixture, full_range, message", [
    ("detector_dir", True, "short-range model"),
    ("full_detector", False, "full-range model"),
])
def test_model_and_range_must_match(request, fixture, full_range, message):
    found = request.getfixturevalue(fixture)
    path = found / SHORT if fixture == "detector_dir" else found
    with pytest.raises(ValueError, match=message):
        BlazeFaceDetector(path, full_range=full_range)


def test_closed_detector_refuses(detector_dir):
    with BlazeFaceDetector(detector_dir / SHORT) as det:
        pass
    with pytest.raises(RuntimeError, match="closed"):
        det.detect(np.zeros((480, 640, 3), np.uint8))


HAS_MEDIAPIPE = importlib.util.find_spec("mediapipe") is not None
needs_mediapipe = pytest.mark.skipif(not HAS_MEDIAPIPE, reason="mediapipe not installed "
                                     "(pip install 'fer-edge[mediapipe]') - backend comparison skipped")


@needs_mediapipe
def test_backends_agree_on_real_faces(detector_dir, short, faces48):
    """Our decoder vs MediaPipe Tasks' FaceDetector on the same model and frames.

    The tints make channel order matter, so a BGR/RGB mix-up would show as a disagreement.
    """
    cases = [(face, 200, (480, 640), (300, 200), (1.0, 1.0, 1.0)) for face in faces48]
    cases += [(face, 150, hw, xy, (0.5, 0.8, 1.0)) for face in faces48[:6]
              for hw, xy in (((360, 640), (400, 150)), ((640, 360), (150, 400)))]
    compared = 0
    with MediaPipeDetector(detector_dir / SHORT, score_threshold=MEDIAPIPE_THRESHOLD) as tasks:
        for face, size, hw, xy, tint in cases:
            image, _ = scene(face, size, hw, xy, tint_bgr=tint)
            ours, theirs = short.detect(image), tasks.detect(image)
            assert len(ours) == len(theirs)
            if not len(ours):
                continue
            iou = iou_matrix(ours.xyxy.astype(np.float64), theirs.xyxy.astype(np.float64))
            match = iou.argmax(axis=1)
            assert (iou.max(axis=1) >= 0.9).all(), (ours.xyxy, theirs.xyxy)
            np.testing.assert_allclose(ours.score, theirs.score[match], atol=0.02)
            np.testing.assert_allclose(ours.keypoints, theirs.keypoints[match], atol=3.0)
            compared += len(ours)
    assert compared >= 0.9 * len(cases)


@needs_mediapipe
def test_mediapipe_backend_via_make_detector(detector_dir, faces48):
    image, region = scene(faces48[0], 200, (480, 640), (300, 200))
    with make_detector(DetectorConfig(backend="mediapipe")) as det:
        assert isinstance(det.detector, MediaPipeDetector)
        for _ in range(3):  # VIDEO mode: back-to-back calls need increasing timestamps
            faces = det.detect(image)
        assert len(faces) == 1 and faces.xyxy.dtype == np.int32
        assert_face_geometry(faces, 0, region)
    with pytest.raises(ValueError, match="short-range"):
        MediaPipeDetector("blaze_face_short_range.tflite", full_range=True)


@pytest.mark.parametrize("src, dst", [
    ((0, 0, 1920, 1080), (0, 0, 384, 384)),  # a tile: the region fills the input
    ((0, 0, 1920, 1080), (0, 28, 128, 100)),  # a letterbox: black above and below
    ((300, 200, 500, 330), (10, 0, 118, 128)),  # a window at the frame's edge: black at the sides
])
def test_the_network_input_is_the_region_in_rgb_from_minus_one_to_one(detector_dir, faces48, src, dst):
    """MediaPipe's input contract, which the lookup table must keep: RGB, p / 127.5 - 1 in
    float32, and -1 (black) wherever the region does not land."""
    from edge.detect.anchors import SHORT_RANGE
    from edge.detect.blazeface import BlazeFaceNet

    frame, _ = scene(faces48[0], 300, (1080, 1920), (400, 250), background="noise", tint_bgr=(0.5, 0.8, 1.0))
    u0, v0, u1, v1 = dst
    size = 384 if dst[2] == 384 else 128
    net = BlazeFaceNet(detector_dir / SHORT, SHORT_RANGE, height=size, width=size, num_threads=1)
    for _ in range(2):  # the second run reuses every buffer
        net.run(frame, src, dst, cv2.INTER_AREA, logit_threshold=100.0)
    x0, y0, x1, y1 = src
    region = cv2.resize(frame[y0:y1, x0:x1], (u1 - u0, v1 - v0), interpolation=cv2.INTER_AREA)[:, :, ::-1]
    want = np.full((size, size, 3), -1.0, np.float32)
    want[v0:v1, u0:u1] = region.astype(np.float32) / np.float32(127.5) - np.float32(1.0)
    assert np.allclose(net.input[0], want, atol=1e-6, rtol=0)
    assert net.input.min() >= -1.0 and net.input.max() <= 1.0

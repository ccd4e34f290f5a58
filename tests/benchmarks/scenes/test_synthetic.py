"""benchmarks/scenes/synthetic.py: the synthetic scenes' truth must line up with the pixels written."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.scenes.synthetic import (
    BACKGROUNDS,
    feather_mask,
    make_scene_image,
    make_scene_video,
    match_placed_faces,
    read_truth,
    truth_frames,
    truth_path,
    upscale_face,
)
from edge.boxes import iou_matrix as iou
from edge.capture.readers import read_video_frames


@pytest.fixture(scope="module")
def faces(fer_data):
    split = fer_data.private
    return split.images[:64], split.labels[:64]


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    a = a.astype(np.float64).ravel() - a.mean()
    b = b.astype(np.float64).ravel() - b.mean()
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-9))


def _inner(box, frac=0.15):
    """The part of the square that feathering leaves untouched."""
    x1, y1, x2, y2 = box
    m = int(np.ceil((x2 - x1) * frac))
    return x1 + m, y1 + m, x2 - m, y2 - m


def _face_match(frame_bgr, box, face48) -> float:
    side = box[2] - box[0]
    ref = upscale_face(face48, side)
    m = int(np.ceil(side * 0.15))
    x1, y1, x2, y2 = _inner(box)
    gray = frame_bgr[y1:y2, x1:x2].mean(axis=2)
    return _corr(gray, ref[m:side - m, m:side - m])


@pytest.mark.parametrize("background", BACKGROUNDS)
def test_video_truth_matches_pixels(tmp_path, faces, background):
    images, labels = faces
    size = (320, 240)
    truth = make_scene_video(tmp_path / "scene.mp4", images, labels, n_frames=6, size=size,
                             faces_per_frame=(1, 4), face_px=(48, 110), fps=10, seed=7,
                             background=background)
    video = tmp_path / truth.video
    assert truth_path(video).is_file()
    assert read_truth(video) == truth
    frames = read_video_frames(video)
    assert len(frames) == truth.n_frames == 6
    assert frames[0].shape == (size[1], size[0], 3)
    for frame, placed in zip(frames, truth.frames):
        assert 1 <= len(placed) <= 4
        boxes = np.array([f.box for f in placed])
        assert (boxes[:, 0] >= 0).all() and (boxes[:, 1] >= 0).all()
        assert (boxes[:, 2] <= size[0]).all() and (boxes[:, 3] <= size[1]).all()
        assert (boxes[:, 2] - boxes[:, 0] == boxes[:, 3] - boxes[:, 1]).all(), "squares"
        overlap = iou(boxes, boxes) - np.eye(len(boxes))
        assert (overlap <= 0).all(), "faces must not overlap"
        for f in placed:
            assert f.label == labels[f.src]
            # The face is where the truth says (codec loss allowed) ...
            assert _face_match(frame, f.box, images[f.src]) > 0.9
            # ... and not half a face further: that would be background or another crop.
            side = f.box[2] - f.box[0]
            shifted = (f.box[0] + side // 2, f.box[1], f.box[2] + side // 2, f.box[3])
            if shifted[2] <= size[0]:
                assert _face_match(frame, shifted, images[f.src]) < 0.8


def test_faces_drift_smoothly_and_keep_identity(tmp_path, faces):
    images, labels = faces
    truth = make_scene_video(tmp_path / "drift.mp4", images, labels, n_frames=40, size=(320, 240),
                             faces_per_frame=3, face_px=(40, 70), seed=3, drift_px=8.0)
    ids = [tuple(f.id for f in placed) for placed in truth.frames]
    assert len(set(ids)) == 1 and len(ids[0]) == 3
    boxes = np.array([[f.box for f in placed] for placed in truth.frames])  # (frames, faces, 4)
    step = np.abs(np.diff(boxes, axis=0)).max()
    assert 0 < step <= 2, "a few px per frame at most, but moving"


def test_deterministic_by_seed(tmp_path, faces):
    images, labels = faces
    a = make_scene_video(tmp_path / "a.mp4", images, labels, n_frames=3, size=(320, 240), seed=11)
    b = make_scene_video(tmp_path / "b.mp4", images, labels, n_frames=3, size=(320, 240), seed=11)
    c = make_scene_video(tmp_path / "c.mp4", images, labels, n_frames=3, size=(320, 240), seed=12)
    assert a.frames == b.frames and a.background == b.background
    assert a.frames != c.frames
    fa, fb = read_video_frames(tmp_path / a.video), read_video_frames(tmp_path / b.video)
    assert all(np.array_equal(x, y) for x, y in zip(fa, fb))
    ia, ta = make_scene_image(images, labels, seed=5, size=(320, 240), face_px=(40, 90))
    ib, tb = make_scene_image(images, labels, seed=5, size=(320, 240), face_px=(40, 90))
    assert np.array_equal(ia, ib) and ta == tb


@pytest.mark.parametrize("angle", [-15.0, 15.0])
def test_still_with_rotated_faces(faces, angle):
    images, labels = faces
    image, placed = make_scene_image(images, labels, size=(320, 240), faces_per_frame=1,
                                     face_px=(120, 120), seed=1, background="gradient", angles=(angle,))
    (f,) = placed
    assert f.angle == angle and f.box[2] - f.box[0] == 120
    import cv2

    # Undo the rotation: the face comes back upright where the truth says.
    x1, y1, x2, y2 = f.box
    c = ((x1 + x2 - 1) / 2.0, (y1 + y2 - 1) / 2.0)
    upright = cv2.warpAffine(image, cv2.getRotationMatrix2D(c, -angle, 1.0), (image.shape[1], image.shape[0]))
    assert _face_match(upright, f.box, images[f.src]) > 0.85
    assert _face_match(image, f.box, images[f.src]) < _face_match(upright, f.box, images[f.src])


def test_feather_mask_shape():
    m = feather_mask(100, 10)
    assert m.shape == (100, 100)
    assert m[50, 50] == 1.0 and m[0, 0] < 0.01 and m[0, 50] < 0.1
    assert np.array_equal(m, m.T) and np.array_equal(m, m[::-1, ::-1])


def test_too_many_big_faces_is_a_clear_error(faces):
    images, labels = faces
    with pytest.raises(ValueError, match="cannot place"):
        make_scene_image(images, labels, size=(200, 150), faces_per_frame=4, face_px=(140, 140))


def test_truth_frames_reads_back_every_frame_and_says_when_one_is_missing(tmp_path, faces):
    images, labels = faces
    truth = make_scene_video(tmp_path / "v.avi", images, labels, n_frames=4, size=(160, 120), faces_per_frame=1,
                             face_px=(40, 60), seed=3)
    video = tmp_path / truth.video
    got = list(truth_frames(video, truth))
    assert [i for i, _, _ in got] == [0, 1, 2, 3] and [p for _, p, _ in got] == list(truth.frames)
    assert all(img.shape == (120, 160, 3) for _, _, img in got)
    longer = type(truth)(size=truth.size, fps=truth.fps, seed=truth.seed, background=truth.background,
                         frames=truth.frames + truth.frames[:1])
    with pytest.raises(RuntimeError, match="only 4 of 5 frames"):
        list(truth_frames(video, longer))


SQUARE = [100, 100, 200, 200]


@pytest.mark.parametrize("detection, matched, why", [
    ([110, 110, 190, 190], True, "IoU 0.64"),
    ([130, 120, 175, 170], True, "a tight box on a small face inside the square (IoU 0.22)"),
    ([150, 100, 250, 200], True, "IoU 0.33, half outside"),
    ([140, 140, 165, 165], False, "a quarter of the side: an eye, not the face"),
    ([170, 170, 240, 240], False, "mostly outside, IoU 0.06"),
    ([300, 300, 360, 360], False, "elsewhere"),
])
def test_a_detection_counts_as_a_placed_face(detection, matched, why):
    ti, di, _ = match_placed_faces(np.array([SQUARE]), np.array([detection]))
    assert (len(ti) == 1) == matched, why


def test_each_square_and_each_detection_is_matched_once():
    squares = np.array([SQUARE, [300, 100, 400, 200]])
    # Two boxes inside the first square: only one is that face; the other is a false positive.
    boxes = np.array([[130, 120, 175, 170], [120, 130, 180, 185], [305, 105, 395, 195]])
    ti, di, ious = match_placed_faces(squares, boxes)
    assert sorted(zip(ti.tolist(), di.tolist()))[0][0] == 0 and len(ti) == 2
    assert sorted(ti.tolist()) == [0, 1] and len(set(di.tolist())) == 2
    assert 2 in di.tolist()  # the IoU match of the second square
    assert ((ious > 0) & (ious <= 1)).all()


def test_no_squares_or_no_detections():
    for squares, boxes in ((np.zeros((0, 4)), np.array([SQUARE])), (np.array([SQUARE]), np.zeros((0, 4)))):
        ti, di, ious = match_placed_faces(squares, boxes)
        assert len(ti) == len(di) == len(ious) == 0

"""edge.detect.motion: thumbnails, the still test, and StillCarry, which skips the network on frames that stand still."""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np
import pytest

from benchmarks.scenes.synthetic import paste_face
from edge.capture.readers import read_video_frames
from edge.detect import motion
from edge.detect.frame import BlazeFaceDetector
from edge.detect.factory import DetectorConfig, make_detector
from edge.detect.motion import StillCarry
from edge.detect.windows import FrameLevels

SHORT = "blaze_face_short_range.tflite"


def _write_video(path, frames, fps: float = 15.0) -> list[np.ndarray]:
    """Frames through a real MJPG file and back: the decoded frames carry the codec's noise."""
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    for frame in frames:
        writer.write(frame)
    writer.release()
    return read_video_frames(path)


def _face_frame(images, size, side: int, face: int = 9, offset=(0, 0)) -> np.ndarray:
    w, h = size
    image = np.full((h, w, 3), 140, np.uint8)
    x, y = (w - side) // 2 + offset[0], (h - side) // 2 + offset[1]
    if side:
        paste_face(image, images[face], (x, y, x + side, y + side))
    return image


@pytest.mark.parametrize("carry_frames", [0, 1, 2, 3])
def test_a_still_video_runs_the_network_once_every_carry_frames_plus_one(tmp_path, detector_dir, faces, carry_frames):
    images, _ = faces
    frames = _write_video(tmp_path / "still.avi", [_face_frame(images, (640, 480), 180)] * 12)
    with BlazeFaceDetector(detector_dir / SHORT, num_threads=1) as net, \
            StillCarry(BlazeFaceDetector(detector_dir / SHORT, num_threads=1), carry_frames) as det:
        carried = []
        for frame in frames:
            got, want = det.detect(frame), net.detect(frame)
            carried.append(det.carried_last_frame)
            assert len(got) == len(want) == 1
            assert np.abs(got.xyxy - want.xyxy).max() <= 2  # what the network would have said
    period = [False] + [True] * carry_frames
    assert carried == (period * 12)[:12]


@pytest.mark.parametrize("case, size, side, patch, carried", [
    ("sure face", (640, 480), 180, {}, True),
    ("empty still scene", (640, 480), 0, {}, True),
    ("face smaller than CARRY_MIN_PX", (160, 120), 60, {}, False),
    ("unsure face", (640, 480), 180, {"CONFIDENT_SCORE": 0.95}, False),
])
def test_only_sure_large_faces_are_carried(tmp_path, monkeypatch, detector_dir, faces, case, size, side, patch,
                                           carried):
    images, _ = faces
    for name, value in patch.items():
        monkeypatch.setattr(motion, name, value)
    frames = _write_video(tmp_path / "still.avi", [_face_frame(images, size, side)] * 4)
    with StillCarry(BlazeFaceDetector(detector_dir / SHORT, num_threads=1)) as det:
        found = [len(det.detect(frame)) for frame in frames[:2]]
        assert found == [int(side > 0)] * 2, case
        assert det.carried_last_frame == carried, case


@pytest.mark.parametrize("change", ["face moves 24 px", "a second face comes in", "the light dims", "reset"])
def test_a_change_runs_the_network_on_the_next_frame(detector_dir, faces, change):
    images, _ = faces
    still = _face_frame(images, (640, 480), 180, offset=(-150, 0))
    changed = {"face moves 24 px": _face_frame(images, (640, 480), 180, offset=(-126, 0)),
               "a second face comes in": still.copy(),
               "the light dims": (still * 0.7).astype(np.uint8),
               "reset": still}[change]
    if change == "a second face comes in":
        paste_face(changed, images[4], (420, 150, 600, 330))
    with BlazeFaceDetector(detector_dir / SHORT, num_threads=1) as net, \
            StillCarry(BlazeFaceDetector(detector_dir / SHORT, num_threads=1)) as det:
        det.detect(still)
        det.detect(still)
        assert det.carried_last_frame
        if change == "reset":
            det.reset()
        got = det.detect(changed)
        assert not det.carried_last_frame
        np.testing.assert_array_equal(got.xyxy, net.detect(changed).xyxy)
        assert len(got) == (2 if change == "a second face comes in" else 1)


def test_carry_frames_must_not_be_negative_here_either(detector_dir):
    with pytest.raises(ValueError, match="carry_frames"):
        StillCarry(BlazeFaceDetector(detector_dir / SHORT, num_threads=1), -1)


@pytest.mark.parametrize("height, width", [(350, 350), (1080, 1920), (147, 110), (7, 5)])
def test_the_thumbnail_is_a_whole_factor_smaller_at_every_frame_size(faces, height, width):
    """A photo whose sides are no multiple of THUMB_DIV (350 px) is cut to whole blocks, so the
    thumbnail is the blocks' means and a face's thumbnail area lies where the face is."""
    images, _ = faces
    image = cv2.resize(_face_frame(images, (640, 480), 200), (width, height), interpolation=cv2.INTER_AREA)
    thumbnail = motion.Thumbnail(height, width)
    thumb = thumbnail(image).copy()  # the thumbnail is a reused buffer
    w, h = thumbnail.size
    assert thumb.shape == (h, w)
    if min(height, width) >= motion.THUMB_DIV:
        assert (w, h) == (width // motion.THUMB_DIV, height // motion.THUMB_DIV)
        assert thumbnail.scale == (1 / motion.THUMB_DIV, 1 / motion.THUMB_DIV)
        gray = cv2.cvtColor(image[:h * motion.THUMB_DIV, :w * motion.THUMB_DIV], cv2.COLOR_BGR2GRAY).astype(np.float32)
        means = gray.reshape(h, motion.THUMB_DIV, w, motion.THUMB_DIV).mean(axis=(1, 3))
        # Each halving and the gray conversion round to whole levels: at most half a level each.
        assert np.abs(thumb.astype(np.float32) - means).max() <= 0.5 * (motion.THUMB_DIV.bit_length() - 1) + 0.5
        # A face pasted into the middle changes the thumbnail there and only there.
        box = (width // 4, height // 4, width // 4 + width // 3, height // 4 + height // 3)
        moved = image.copy()
        paste_face(moved, images[3], box)
        area = motion.face_thumb_area(box, thumbnail.scale, margin=0.25)
        assert not motion.still(thumbnail(moved)[area], thumb[area])
    else:
        assert (w, h) == (1, 1)


@pytest.mark.parametrize("height, width", [(480, 640), (1080, 1920), (483, 641), (351, 350), (7, 5)])
def test_the_thumbnail_of_a_frames_levels_is_the_thumbnail_of_the_frame(faces, height, width):
    """The thumbnail from FrameLevels starts from their halving (shared with the detector's windows):
    exactly the pixels of the thumbnail made from the frame alone; a second thumbnail of the same
    levels copies the first one's, into its own buffer."""
    images, _ = faces
    image = cv2.resize(_face_frame(images, (640, 480), 200), (width, height), interpolation=cv2.INTER_AREA)
    image[::7, ::5] = 255 - image[::7, ::5]  # detail at every scale, so that any offset shows
    alone = motion.Thumbnail(height, width)(np.ascontiguousarray(image)).copy()
    levels = FrameLevels(image)
    first, second = motion.Thumbnail(height, width), motion.Thumbnail(height, width)
    shared = first(levels)
    assert np.array_equal(shared, alone)
    assert levels.gray_thumb is shared
    copied = second(levels)
    assert np.array_equal(copied, alone) and not np.shares_memory(copied, shared)


@pytest.mark.parametrize("scan", ["auto", "frame"])
def test_still_carry_gives_its_detector_the_frame_levels_and_the_same_faces(tmp_path, detector_dir, faces, scan):
    """StillCarry hands the wrapped detector the frame's FrameLevels; on a real video, with the
    face moving so that most frames run the network, every frame's faces are those of the
    detector run on the plain frames."""
    images, _ = faces
    frames = _write_video(tmp_path / "walk.avi", [_face_frame(images, (640, 480), 150, offset=(6 * i - 60, 0))
                                                  for i in range(20)])
    config = DetectorConfig(model_path=str(detector_dir / SHORT), scan=scan)
    seen = []
    with make_detector(config) as carry, make_detector(replace(config, carry_frames=0)) as plain:
        inner = carry.detector
        run = inner.detect
        inner.detect = lambda image: (seen.append(type(image)), run(image))[1]
        for frame in frames:
            got, want = carry.detect(frame), plain.detect(frame)
            if not carry.carried_last_frame:
                assert np.array_equal(got.xyxy, want.xyxy) and np.array_equal(got.score, want.score)
    assert seen and set(seen) == {FrameLevels}

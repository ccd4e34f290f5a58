"""edge.capture.readers: video files in order, corrupt frames and images skipped, picamera2's adapter."""

from __future__ import annotations

import sys
import time
import types
from pathlib import Path

import cv2
import numpy as np
import pytest
from capture_helpers import SIZE, level, write_video  # tests/edge/capture/, on the path as this test's folder

from edge.capture.readers import CvReader, read_video_frames, video_frames
from edge.capture.source import SourceError, parse_source
from edge.capture.thread import Capture


def test_video_frames_reads_a_file_in_order_on_the_callers_thread(tmp_path):
    video = write_video(tmp_path / "v.avi", 12, fps=10.0)
    frames = read_video_frames(video)
    assert len(frames) == 12 and all(f.shape == (SIZE[1], SIZE[0], 3) for f in frames)
    assert [round(float(f.mean())) for f in frames] == pytest.approx([level(i) for i in range(12)], abs=3)
    first = next(video_frames(video))
    assert np.array_equal(first, frames[0])
    reader = CvReader(str(video), live=False)
    assert reader.frame_count == 12 and reader.fps == pytest.approx(10.0)
    reader.close()
    with pytest.raises(OSError, match="cannot open"):
        read_video_frames(tmp_path / "missing.avi")



def test_corrupt_frames_inside_a_video_are_skipped_and_counted(tmp_path):
    video = write_video(tmp_path / "v.avi", 20)
    data = bytearray(video.read_bytes())
    soi, pos = [], 0
    while (pos := data.find(b"\xff\xd8", pos + 1)) > 0:  # each MJPG frame starts with a JPEG SOI marker
        soi.append(pos)
    assert len(soi) == 20
    for k in (5, 6):  # wipe the start of two frames' JPEG data
        data[soi[k]:soi[k] + 200] = bytes(200)
    video.write_bytes(bytes(data))
    with Capture.from_spec(parse_source(str(video))) as capture:
        frames = list(capture.frames())
    levels = [round(float(f.image.mean())) for f in frames]
    assert capture.stats.skipped == 2 and len(frames) == 18
    assert [abs(lv - level(k)) < 3 for lv, k in zip(levels, [*range(5), *range(7, 20)])] == [True] * 18
    assert [f.index for f in frames] == list(range(18))
    assert frames[5].t == pytest.approx(7 / 25.0)  # media time skips the lost frames


def test_images_skip_corrupt_and_empty_files(tmp_path):
    for name in ("a.png", "c.jpg", "e.png"):
        cv2.imwrite(str(tmp_path / name), np.full((20, 30, 3), 100, np.uint8))
    (tmp_path / "b.jpg").write_bytes(b"this is not a jpeg")
    (tmp_path / "d.png").write_bytes(b"")
    with Capture.from_spec(parse_source(str(tmp_path))) as capture:
        frames = list(capture.frames())
    assert [Path(f.source).name for f in frames] == ["a.png", "c.jpg", "e.png"]
    assert [f.index for f in frames] == [0, 1, 2]
    assert capture.stats.skipped == 2 and capture.stats.frames == 3



class FakePicamera2:
    """The picamera2 API surface our adapter uses (the device's library is not installed here)."""

    instances: list["FakePicamera2"] = []

    def __init__(self):
        self.calls = []
        self.config = None
        self.n = 0
        FakePicamera2.instances.append(self)

    def create_video_configuration(self, main=None, controls=None):
        self.calls.append("create_video_configuration")
        return {"main": dict(main or {}), "controls": dict(controls or {})}

    def configure(self, config):
        self.calls.append("configure")
        self.config = config

    def start(self):
        self.calls.append("start")

    def capture_array(self, name="main"):
        assert name == "main"
        w, h = self.config["main"]["size"]
        self.n += 1
        img = np.zeros((h, w, 4), np.uint8)  # XRGB8888: B, G, R, A in memory
        img[..., 0], img[..., 1], img[..., 2], img[..., 3] = 10, 20, 30, 255
        time.sleep(0.002)
        return img

    def stop(self):
        self.calls.append("stop")

    def close(self):
        self.calls.append("close")


def test_picamera2_adapter_configures_reads_bgr_and_releases(monkeypatch):
    FakePicamera2.instances.clear()
    monkeypatch.setitem(sys.modules, "picamera2", types.SimpleNamespace(Picamera2=FakePicamera2))
    capture = Capture.from_spec(parse_source("picamera2"), width=320, height=240, fps=30)
    with capture:
        frame = capture.read(timeout_s=5.0)
        frame2 = capture.read(after=frame.index, timeout_s=5.0)
    cam = FakePicamera2.instances[0]
    assert cam.config == {"main": {"size": (320, 240), "format": "RGB888"}, "controls": {"FrameRate": 30.0}}
    assert frame.image.shape == (240, 320, 3) and frame2.index > frame.index
    assert frame.image[0, 0].tolist() == [10, 20, 30]  # BGR kept, alpha dropped
    assert cam.calls[:3] == ["create_video_configuration", "configure", "start"]
    assert cam.calls[-2:] == ["stop", "close"]  # released when the capture closed


def test_picamera2_missing_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "picamera2", None)  # import fails as on a machine without it
    with Capture.from_spec(parse_source("picamera2")) as capture, pytest.raises(SourceError, match="python3-picamera2"):
        capture.read(timeout_s=5.0)

"""Capture thread: live newest-frame semantics, file delivery, reconnects, errors, picamera2."""

from __future__ import annotations

import sys
import threading
import time
import types
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.capture.readers import CvReader, Grab, read_video_frames, video_frames
from edge.capture.source import SourceError, parse_source
from edge.capture.thread import Capture, EndOfStream, LatestFrameBox, backoff_delay
from edge.types import Frame

SIZE = (160, 120)  # w, h


def level(index: int) -> int:
    return (index * 2) % 250  # each frame is a flat gray of this level, so content identifies it


def write_video(path: Path, n: int, fps: float = 25.0) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, SIZE)
    assert writer.isOpened()
    for i in range(n):
        writer.write(np.full((SIZE[1], SIZE[0], 3), level(i), np.uint8))
    writer.release()
    return path


def assert_content(frame: Frame) -> None:
    assert abs(float(frame.image.mean()) - level(frame.index)) < 3, "frame content does not match its index"


# --------------------------------------------------------------------------------- source specs

def test_parse_source_kinds(tmp_path):
    video = write_video(tmp_path / "v.avi", 2)
    img = tmp_path / "a.png"
    cv2.imwrite(str(img), np.zeros((8, 8, 3), np.uint8))
    cases = {
        "0": "camera", "2": "camera", "picamera2": "picamera2",
        "rtsp://127.0.0.1:8554/cam": "url", "http://127.0.0.1/x.mjpg": "url",
        str(video): "video", str(img): "image", str(tmp_path): "folder", str(tmp_path / "*.png"): "folder",
    }
    for text, kind in cases.items():
        assert parse_source(text).kind == kind, text
    assert parse_source(str(tmp_path)).paths == (str(img),)
    assert parse_source("0").live and parse_source("picamera2").live and not parse_source(str(video)).live


@pytest.mark.parametrize("text, words", [
    ("no/such/file.mp4", "file not found: no/such/file.mp4"),
    ("{tmp}/empty_dir", "no images"),
    ("{tmp}/*.nothing", "matches no images"),
    ("{tmp}/nested", "only in its sub-folders; pass a quoted glob"),
])
def test_parse_source_rejects_with_a_clear_message(tmp_path, text, words):
    (tmp_path / "empty_dir").mkdir()
    (tmp_path / "nested" / "2024" / "june").mkdir(parents=True)
    cv2.imwrite(str(tmp_path / "nested" / "2024" / "june" / "a.jpg"), np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(SourceError, match=words):
        parse_source(text.format(tmp=tmp_path))


@pytest.mark.parametrize("suffix", [".jpg", ".tiff", ".PNG"])
def test_the_globs_that_the_nested_folder_error_suggests_find_its_images(tmp_path, suffix):
    for sub in ("a", "b/c"):
        (tmp_path / sub).mkdir(parents=True)
        assert cv2.imwrite(str(tmp_path / sub / f"x{suffix}"), np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(SourceError) as err:
        parse_source(str(tmp_path))
    suggested = str(err.value).split("'")[1::2]  # the quoted globs: this type, and every type
    assert suggested == [str(tmp_path / "**" / f"*{suffix}"), str(tmp_path / "**" / "*")], str(err.value)
    for glob_text in suggested:
        spec = parse_source(glob_text)
        assert spec.kind == "folder" and [Path(q).relative_to(tmp_path).as_posix() for q in spec.paths] == \
            [f"a/x{suffix}", f"b/c/x{suffix}"]


# --------------------------------------------------------------------------------- live: newest frame

def test_latest_frame_box_counts_overwrites_and_never_repeats():
    box = LatestFrameBox()
    img = np.zeros((2, 2, 3), np.uint8)
    for i in range(3):
        box.put(Frame(img, i, 0.0))
    assert box.get(after=-1, timeout_s=0.1).index == 2
    assert box.drops == 2
    assert box.get(after=2, timeout_s=0.01) is None  # the same frame is never handed out twice
    box.put(Frame(img, 3, 0.0))
    box.close()
    assert box.get(after=2, timeout_s=0.1).index == 3  # delivered before the end
    with pytest.raises(EndOfStream):
        box.get(after=3, timeout_s=0.1)


def test_slow_consumer_of_a_live_source_gets_fresh_frames_and_drops_are_counted(tmp_path):
    video = write_video(tmp_path / "fast.avi", 120, fps=200.0)
    capture = Capture.from_spec(parse_source(str(video)), realtime=True)  # paced, newest-frame semantics
    assert capture.live
    seen = []
    with capture:
        last = -1
        while True:
            newest_before = capture.stats.frames - 1
            try:
                frame = capture.read(after=last, timeout_s=5.0)
            except EndOfStream:
                break
            assert frame is not None
            assert frame.index > last, "a frame was delivered twice or out of order"
            assert frame.index >= newest_before, "a stale frame was delivered"
            assert_content(frame)
            seen.append(frame.index)
            last = frame.index
            time.sleep(0.02)  # a consumer slower than the source
    stats = capture.stats
    assert stats.frames == 120
    assert stats.drops > 0
    assert len(seen) + stats.drops == stats.frames  # every frame was either taken or counted as dropped


def test_file_source_delivers_every_frame_in_order_to_a_slow_consumer(tmp_path):
    video = write_video(tmp_path / "v.avi", 40)
    with Capture.from_spec(parse_source(str(video))) as capture:
        frames = []
        for frame in capture.frames():
            frames.append(frame)
            time.sleep(0.005)
    assert [f.index for f in frames] == list(range(40))
    assert capture.stats.drops == 0
    for f in frames:
        assert_content(f)
    assert frames[10].t == pytest.approx(10 / 25.0)


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


@pytest.mark.parametrize("realtime", [False, True])
def test_close_stops_and_joins_the_capture_thread_quickly(tmp_path, realtime):
    # File mode: the producer is blocked on a full queue; live mode: it is pacing frames.
    video = write_video(tmp_path / "long.avi", 300, fps=50.0)
    capture = Capture.from_spec(parse_source(str(video)), realtime=realtime, queue_size=2).start()
    assert capture.read(timeout_s=5.0) is not None
    time.sleep(0.2)
    join_s = capture.close()
    assert not capture._thread.is_alive()
    assert join_s < 1.0  # behaviour bound: the thread notices the stop event within its 0.1 s polls


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


# --------------------------------------------------------------------------------- reconnects and errors

class FlakyCamera:
    """A device that fails to open `open_failures` times, then drops out once after `first_run` frames."""

    def __init__(self, open_failures: int, first_run: int):
        self.open_failures, self.first_run = open_failures, first_run
        self.opens = self.closes = self.sessions = 0
        self.lock = threading.Lock()

    def open(self):
        with self.lock:
            self.opens += 1
            if self.opens <= self.open_failures:
                raise OSError(f"device busy (attempt {self.opens})")
            self.sessions += 1
            return _Session(self, dies_after=self.first_run if self.sessions == 1 else None)


class _Session:
    def __init__(self, cam: FlakyCamera, dies_after: int | None):
        self.cam, self.dies_after, self.n = cam, dies_after, 0

    def read(self) -> Grab:
        if self.dies_after is not None and self.n >= self.dies_after:
            raise OSError("USB camera unplugged")
        self.n += 1
        time.sleep(0.002)
        return Grab(np.zeros((4, 4, 3), np.uint8))

    def close(self) -> None:
        self.cam.closes += 1


@pytest.mark.parametrize("open_failures", [1, 3])
def test_live_source_reconnects_after_failures(open_failures):
    cam = FlakyCamera(open_failures=open_failures, first_run=5)
    capture = Capture(cam.open, live=True, name="flaky", open_retries=open_failures, backoff_s=0.001)
    indices = []
    with capture:
        last = -1
        while len(indices) < 20:
            frame = capture.read(after=last, timeout_s=5.0)
            assert frame is not None
            indices.append(frame.index)
            last = frame.index
    assert capture.stats.reconnects == open_failures + 1  # the failed opens and the unplug
    assert cam.sessions == 2 and cam.closes == 2  # every opened session was released
    assert all(b > a for a, b in zip(indices, indices[1:]))  # indices keep rising across the reconnect


def test_gives_up_after_open_retries_and_reraises_on_the_consumer_side():
    cam = FlakyCamera(open_failures=100, first_run=0)
    capture = Capture(cam.open, live=True, name="camera", open_retries=2, backoff_s=0.001)
    with capture, pytest.raises(SourceError, match="device busy"):
        while True:
            capture.read(timeout_s=5.0)
    assert cam.opens == 3 and capture.stats.reconnects == 2


def test_file_source_error_is_reraised_and_the_device_released():
    closed = []

    class Broken:
        def read(self):
            raise ValueError("decoder exploded")

        def close(self):
            closed.append(True)

    with Capture(Broken, live=False) as capture, pytest.raises(ValueError, match="decoder exploded"):
        capture.read(timeout_s=5.0)
    assert closed == [True]


@pytest.mark.parametrize("failures, expected", [(1, 0.25), (2, 0.5), (3, 1.0), (6, 8.0), (20, 8.0)])
def test_backoff_is_exponential_and_capped(failures, expected):
    assert backoff_delay(failures, base_s=0.25, cap_s=8.0) == pytest.approx(expected)


# --------------------------------------------------------------------------------- picamera2

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

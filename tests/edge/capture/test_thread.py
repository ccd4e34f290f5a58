"""edge.capture.thread: live newest-frame semantics, file delivery, stopping, reconnects and errors."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from capture_helpers import assert_content, write_video  # tests/edge/capture/, on the path as this test's folder

from edge.capture.readers import Grab
from edge.capture.source import SourceError, parse_source
from edge.capture.thread import Capture, EndOfStream, LatestFrameBox, backoff_delay
from edge.types import Frame


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

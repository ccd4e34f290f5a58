"""edge/loop.py: the frame loop over a real video and the real pipeline, and the run summary it keeps."""

from __future__ import annotations

import threading

import pytest

from edge import Pipeline
from edge.capture.source import SourceError, parse_source
from edge.capture.thread import Capture
from edge.loop import FrameLoop, RunSummary
from edge.types import StageTimings
from edge_runtime_helpers import known_result, scene_video

N_FRAMES = 12


@pytest.fixture(scope="module")
def video(tmp_path_factory, faces_dir):
    path = tmp_path_factory.mktemp("loop") / "scene.mp4"
    truth, _ = scene_video(path, faces_dir, n_frames=N_FRAMES, size=(1280, 720), faces_per_frame=2,
                           face_px=(150, 220), seed=3)
    return path.parent / truth.video


@pytest.fixture(scope="module")
def pipeline(detector_dir, emotion_model):
    with Pipeline.from_defaults(emotion_model=str(emotion_model)) as pipe:
        yield pipe


def _loop(pipeline, video, stop=None, **kwargs):
    pipeline.reset()
    capture = Capture.from_spec(parse_source(str(video)))
    return capture, FrameLoop(pipeline, capture, stop or threading.Event(), **kwargs)


@pytest.mark.parametrize("workers", [1, 2])
def test_every_frame_of_a_file_in_order_and_counted(pipeline, video, workers):
    seen = []
    capture, loop = _loop(pipeline, video, workers=workers)
    with capture, loop:
        loop.run(lambda result: seen.append(result))
    assert [r.frame.index for r in seen] == list(range(N_FRAMES))
    s = loop.summary
    assert s.frames == N_FRAMES and s.faces == sum(len(r.faces) for r in seen) >= N_FRAMES
    assert s.drops == s.skipped == s.reconnects == 0 and s.wall_s > 0
    assert s.percentiles(50)["total"] > 0


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("how", ["callback", "stop event"])
def test_the_loop_ends_when_asked(pipeline, video, workers, how):
    stop = threading.Event()
    seen = []

    def on_result(result):
        seen.append(result.frame.index)
        if len(seen) == 3:
            if how == "stop event":
                stop.set()
            return how == "callback"
        return False

    capture, loop = _loop(pipeline, video, stop, workers=workers)
    with capture, loop:
        loop.run(on_result)
    assert seen == [0, 1, 2] and loop.summary.frames == 3


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("max_fps", [20.0, 40.0])
def test_max_fps_spaces_the_frames(pipeline, video, max_fps, workers):
    """The cap is a floor on the time between frames, also when detection runs ahead on a
    second thread: n frames take at least (n - 1) / max_fps."""
    capture, loop = _loop(pipeline, video, max_fps=max_fps, workers=workers)
    with capture, loop:
        loop.run(lambda result: None)
    assert loop.summary.frames == N_FRAMES
    assert loop.summary.wall_s >= (N_FRAMES - 1) / max_fps


def test_the_source_error_reaches_the_caller(pipeline, tmp_path):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"this is not a video" * 100)
    capture, loop = _loop(pipeline, bad)
    with pytest.raises(SourceError), capture, loop:
        loop.run(lambda result: None)
    assert loop.summary.frames == 0


@pytest.mark.parametrize("workers", [1, 2])
def test_idle_is_called_while_no_frame_is_ready_and_can_end_the_loop(pipeline, tmp_path, faces_dir, workers):
    """A file played at its own 2 frames/s leaves the loop waiting between frames: on_idle decides."""
    truth, _ = scene_video(tmp_path / "slow.mp4", faces_dir, n_frames=6, size=(640, 360), fps=2.0)
    pipeline.reset()
    idle, seen = [], []
    with Capture.from_spec(parse_source(str(tmp_path / truth.video)), realtime=True) as capture, \
            FrameLoop(pipeline, capture, threading.Event(), workers=workers) as loop:
        loop.run(lambda result: seen.append(result.frame.index), lambda: bool(idle.append(1)) or bool(seen))
    assert idle and seen[0] == 0 and len(seen) == loop.summary.frames < 6  # ended at the first wait after a frame


def test_run_needs_the_loop_entered(pipeline, video):
    capture, loop = _loop(pipeline, video)
    with pytest.raises(RuntimeError, match="with FrameLoop"):
        loop.run(lambda result: None)
    with pytest.raises(ValueError, match="max_fps"):
        FrameLoop(pipeline, capture, threading.Event(), max_fps=-1)


def test_run_summary_percentiles_and_text():
    s = RunSummary()
    for k in range(1, 101):
        r = known_result(1)
        object.__setattr__(r, "timings", StageTimings(detect_ms=k, preprocess_ms=0, classify_ms=1,
                                                        track_ms=0, total_ms=k + 1))
        s.add(r)
    s.drops, s.skipped, s.wall_s = 4, 2, 10.0
    assert s.percentiles(50)["detect"] == pytest.approx(50.5)
    assert s.percentiles(95)["total"] == pytest.approx(96.05)
    assert s.fps == pytest.approx(10.0)
    text = s.text()
    for words in ("frames 100", "drops 4", "skipped 2", "10.0 frames/s", "p50", "p95", "detect", "classify"):
        assert words in text
    assert RunSummary().text().startswith("frames 0")  # no frames: the counts, no NaN table


def _timed(ms: float):
    r = known_result(1)
    object.__setattr__(r, "timings", StageTimings(detect_ms=ms, preprocess_ms=0, classify_ms=1, track_ms=0,
                                                    total_ms=ms + 1))
    return r


def test_run_summary_memory_is_bounded_by_its_window():
    """A long run holds no more than a short one: a fixed window of latencies, whole-run counts."""
    import tracemalloc

    s = RunSummary(window=1000)
    result = _timed(5.0)
    tracemalloc.start()
    try:
        for _ in range(1000):
            s.add(result)
        after_window, _ = tracemalloc.get_traced_memory()
        for _ in range(20_000):
            s.add(result)
        after_long_run, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert after_long_run - after_window < 1024, (after_window, after_long_run)
    assert s.frames == 21_000 and s.faces == 21_000 and s.window_frames == 1000


def test_run_summary_percentiles_describe_the_last_window():
    s = RunSummary(window=100)
    for k in range(1, 301):
        s.add(_timed(float(k)))
    assert s.frames == 300
    assert s.percentiles(50)["detect"] == pytest.approx(250.5)  # frames 201..300 only
    assert s.percentiles(95)["total"] == pytest.approx(296.05)  # totals 202..301
    text = s.text()
    assert "frames 300" in text and "(last 100 frames)" in text
    assert s.to_json()["latency_frames"] == 100
    short = RunSummary(window=100)
    short.add(_timed(1.0))
    assert "last" not in short.text()

"""Two frame-loop threads (edge.pipeline.DetectAhead): frame order, tracking, thread ownership, live sources."""

from __future__ import annotations

import json
import threading
import time

import numpy as np
import pytest

from edge import Pipeline
from edge.capture.source import parse_source
from edge.capture.thread import Capture, EndOfStream
from edge.cli import main as cli_main
from edge.pipeline import DetectAhead, InlineStages, stages
from edge_runtime_helpers import scene_video

N_FRAMES = 24


@pytest.fixture(scope="module")
def video(tmp_path_factory, faces_dir, detector_dir):
    """The video the runs read; they need the face detector, so they skip without one (detector_dir)."""
    path = tmp_path_factory.mktemp("workers") / "scene.mp4"
    truth, _ = scene_video(path, faces_dir, n_frames=N_FRAMES, size=(640, 360), faces_per_frame=(2, 3),
                           face_px=(130, 170), seed=5, per_class=3)
    return path.parent / truth.video


@pytest.fixture()
def pipeline(detector_dir, emotion_model):
    with Pipeline.from_defaults(emotion_model=str(emotion_model)) as pipe:
        yield pipe


def _drain(loop) -> list:
    """Every result a frame loop still gives, in order, until its source ends."""
    results = []
    while True:
        try:
            result = loop.next(timeout_s=30.0)
        except EndOfStream:
            return results
        if result is not None:
            results.append(result)


def _run(pipeline, video, workers: int) -> list:
    with Capture.from_spec(parse_source(str(video))) as capture, stages(pipeline, capture, workers) as loop:
        return _drain(loop)


def test_two_workers_give_the_same_results_in_frame_order(pipeline, video):
    serial = _run(pipeline, video, 1)
    pipeline.reset()
    ahead = _run(pipeline, video, 2)
    assert [r.frame.index for r in ahead] == list(range(N_FRAMES)) == [r.frame.index for r in serial]
    assert sum(len(r.faces) for r in ahead) >= N_FRAMES  # the scene's faces were found
    offset = ahead[0].track_ids.min() - serial[0].track_ids.min()  # ids keep counting across a reset
    for a, s in zip(ahead, serial):
        np.testing.assert_array_equal(a.faces.xyxy, s.faces.xyxy)
        np.testing.assert_array_equal(a.track_ids, s.track_ids + offset)  # tracking saw the frames in order
        np.testing.assert_array_equal(a.label_index, s.label_index)
        np.testing.assert_allclose(a.probs, s.probs, atol=1e-6)


def test_each_model_is_used_by_one_thread(pipeline, video):
    """The detector runs on the worker only, the classifier and tracker on the caller only."""
    seen: dict[str, set[int]] = {"detect": set(), "classify": set(), "track": set()}
    real_detect, real_classify = pipeline.detector.detect, pipeline.classifier.classify_pixels
    real_update = pipeline.tracker.update

    def recorded(name, fn):
        def call(*args, **kwargs):
            seen[name].add(threading.get_ident())
            return fn(*args, **kwargs)
        return call

    pipeline.detector.detect = recorded("detect", real_detect)
    pipeline.classifier.classify_pixels = recorded("classify", real_classify)
    pipeline.tracker.update = recorded("track", real_update)
    _run(pipeline, video, 2)
    caller = threading.get_ident()
    assert seen["classify"] == {caller} and seen["track"] == {caller}
    assert len(seen["detect"]) == 1 and caller not in seen["detect"]


def test_the_worker_stops_and_is_joined(pipeline, video):
    before = {t.ident for t in threading.enumerate()}
    with Capture.from_spec(parse_source(str(video))) as capture:
        ahead = DetectAhead(pipeline, capture)
        with ahead:
            assert ahead.next(timeout_s=30.0) is not None
        assert not ahead._thread.is_alive()
    assert {t.ident for t in threading.enumerate() if t.name == "fer-edge-detect"} - before == set()


def test_a_live_source_stays_on_the_newest_frame(pipeline, video):
    """With a slow consumer, a live source drops frames instead of queueing them: at most two
    frames are ever in flight (a file has three), and the indices only grow."""
    with Capture.from_spec(parse_source(str(video)), realtime=True) as capture, DetectAhead(pipeline, capture) as ahead:
        assert ahead.in_flight == DetectAhead.LIVE_IN_FLIGHT == 2
        indices, in_flight = [], []
        while True:
            try:
                result = ahead.next(timeout_s=30.0)
            except EndOfStream:
                break
            if result is None:
                continue
            in_flight.append(ahead._done.qsize())
            indices.append(result.frame.index)
            time.sleep(3.0 / 15.0)  # three frame periods of the 15 frames/s file: frames must be dropped
        drops = capture.stats.drops
    assert indices == sorted(set(indices))
    assert max(in_flight) <= DetectAhead.LIVE_IN_FLIGHT - 1  # besides the one just taken
    assert drops > 0 and len(indices) < N_FRAMES


class _GatedFrames:
    """A file-like frame source (not live) that gives its frames only while `gate` is set."""

    def __init__(self, images):
        from edge.types import Frame

        self.frames = [Frame(image=image, index=i, t=i / 15.0) for i, image in enumerate(images)]
        self.gate = threading.Event()
        self.reads = 0

    def read(self, after: int = -1, timeout_s: float | None = None):
        if not self.gate.wait(timeout_s):
            return None
        if after + 1 >= len(self.frames):
            raise EndOfStream
        self.reads += 1
        return self.frames[after + 1]


def _wait_for(condition, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "the worker did not get there"
        time.sleep(0.005)


def test_a_file_has_extra_frames_in_flight_only_while_the_caller_waits(pipeline, video):
    """From a file: while the caller finds nothing detected, up to FILE_IN_FLIGHT frames are granted
    to the worker; once detected frames wait for the caller, it grants only up to LIVE_IN_FLIGHT,
    so that frames do not queue behind a slow caller. Every frame comes out, in order."""
    from edge.capture.readers import read_video_frames

    n, live = DetectAhead.FILE_IN_FLIGHT, DetectAhead.LIVE_IN_FLIGHT
    assert n > live
    source = _GatedFrames(read_video_frames(video)[:n + 4])
    with DetectAhead(pipeline, source) as ahead:
        assert ahead.in_flight == n
        assert ahead.next(timeout_s=0.05) is None  # nothing to detect yet: the caller waits
        assert ahead._in_flight == n
        source.gate.set()
        _wait_for(lambda: ahead._done.qsize() == n)  # the worker detected its frames and stops
        time.sleep(0.05)
        assert source.reads == n
        indices = []
        for k in range(n):  # a slow caller: a detected frame is always waiting when it comes back
            indices.append(ahead.next(timeout_s=30.0).frame.index)
            # No frame is granted until fewer than `live` are in flight; then one tops them up.
            assert ahead._in_flight == max(n - 1 - k, live - 1)
        _wait_for(lambda: ahead._done.qsize() >= ahead._in_flight)
        assert source.reads == n + 1  # in those n calls, one frame granted
        indices += [result.frame.index for result in _drain(ahead)]
    assert indices == list(range(n + 4))


def test_stills_are_fresh_streams(pipeline, video):
    """fresh(frame) resets the detector's memory and the tracker: every still starts new tracks."""
    with Capture.from_spec(parse_source(str(video))) as capture, \
            DetectAhead(pipeline, capture, fresh=lambda frame: True) as ahead:
        ids = []
        for _ in range(5):
            result = ahead.next(timeout_s=30.0)
            ids.append(set(result.track_ids.tolist()))
    assert all(i for i in ids)
    assert len(set.union(*ids)) == sum(len(i) for i in ids)  # no id is ever reused across stills


def test_stages_checks_workers(pipeline, video):
    with Capture.from_spec(parse_source(str(video))) as capture:
        assert isinstance(stages(pipeline, capture, 1), InlineStages)
        assert isinstance(stages(pipeline, capture, 2), DetectAhead)
        with pytest.raises(ValueError, match="workers"):
            stages(pipeline, capture, 3)


def test_run_cli_writes_the_same_jsonl_with_one_or_two_workers(tmp_path, video, emotion_model):
    outputs = []
    for workers in (1, 2):
        out = tmp_path / f"w{workers}.jsonl"
        rc = cli_main(["run", "--source", str(video), "--headless", "--jsonl", str(out), "--workers", str(workers),
                       "--model", str(emotion_model)])
        assert rc == 0
        outputs.append(out.read_text().splitlines())
    one, two = outputs
    assert len(one) == len(two) == N_FRAMES
    for a, b in zip(one, two):
        ra, rb = json.loads(a), json.loads(b)
        assert ra["frame"] == rb["frame"]
        assert [(f["id"], f["box"], f["emotion"]) for f in ra["faces"]] == \
            [(f["id"], f["box"], f["emotion"]) for f in rb["faces"]]

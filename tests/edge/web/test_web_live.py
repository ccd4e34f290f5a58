"""edge/web/live.py: the live thread over a real video file, MJPEG viewers, ended and failed sources."""

from __future__ import annotations

import threading
import time

import cv2
import numpy as np
import pytest

from edge.capture.source import parse_source
from edge.capture.thread import Capture
from edge.outputs.overlay import draw
from edge.pipeline import Pipeline
from edge.web.app import MJPEG_BOUNDARY, StillPool, WebConfig, create_app, face_records
from edge.web.live import ENDED, FAILED, STOPPED, LiveStream, TooManyClients
from web_helpers import write_video


@pytest.fixture(scope="module")
def live_pipeline(detector_dir, emotion_model):
    with Pipeline.from_defaults(emotion_model=str(emotion_model)) as pipeline:
        yield pipeline


def make_live(path, pipeline, realtime=True, max_clients=4, max_fps=0.0) -> LiveStream:
    spec = parse_source(str(path))
    return LiveStream(lambda: Capture.from_spec(spec, realtime=realtime), pipeline,
                      lambda image, result, fps: draw(image, result, fps),
                      lambda result: face_records(result, with_ids=True),
                      source_name=str(path), max_clients=max_clients, max_fps=max_fps)


def wait_for(predicate, timeout_s: float = 30.0, what: str = "condition"):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.parametrize("max_fps", [0.0, 50.0])
def test_every_frame_is_published_and_the_source_ends(tmp_path, fer_faces, live_pipeline, max_fps):
    """A file source not played in real time delivers every frame, with or without a rate cap."""
    video = write_video(tmp_path / "v.avi", fer_faces, n_frames=12)
    live_pipeline.reset()
    with make_live(video, live_pipeline, realtime=False, max_fps=max_fps) as live:
        wait_for(lambda: live.finished, what="the end of the video")
        stats = live.stats()
        assert stats["state"] == ENDED and stats["error"] == ""
        assert stats["frames"] == 12 and stats["captured"] == 12 and stats["drops"] == 0
        frame = live.latest()
        assert frame.seq == 11 and (frame.width, frame.height) == (320, 240)
        image = cv2.imdecode(np.frombuffer(frame.jpeg, np.uint8), cv2.IMREAD_COLOR)
        assert image.shape == (240, 320, 3)
        assert len(frame.faces) == 1 and frame.faces[0]["id"] >= 0  # live faces carry track ids
    assert not live._thread.is_alive()


def test_a_broken_video_is_a_failed_state_not_a_crash(tmp_path, live_pipeline):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"this is not a video" * 100)
    with make_live(bad, live_pipeline) as live:
        wait_for(lambda: live.finished, what="the failure")
        stats = live.stats()
        assert stats["state"] == FAILED and stats["error"]
        assert live.latest() is None
        assert list(live.mjpeg(MJPEG_BOUNDARY, keepalive_s=0.1)) == []  # viewers get an empty stream


def test_close_stops_a_running_source_and_wakes_viewers(tmp_path, fer_faces, live_pipeline):
    video = write_video(tmp_path / "long.avi", fer_faces, n_frames=300)  # 30 s at 10 fps
    live = make_live(video, live_pipeline).start()
    parts = []
    viewer_done = threading.Event()

    def viewer():
        with live.client():
            for part in live.mjpeg(MJPEG_BOUNDARY):
                parts.append(part)
        viewer_done.set()

    threading.Thread(target=viewer, daemon=True).start()
    wait_for(lambda: len(parts) >= 3, what="three MJPEG parts")
    live.close()
    assert viewer_done.wait(5), "the viewer was not woken by close()"
    assert not live._thread.is_alive()
    assert live.stats()["state"] == STOPPED and live.stats()["clients"] == 0
    assert parts[0].startswith(b"--" + MJPEG_BOUNDARY + b"\r\nContent-Type: image/jpeg\r\n")


def test_viewer_limit(tmp_path, fer_faces, live_pipeline):
    video = write_video(tmp_path / "v.avi", fer_faces, n_frames=5)
    live = make_live(video, live_pipeline, max_clients=2)
    with live.client(), live.client():
        assert live.stats()["clients"] == 2
        with pytest.raises(TooManyClients):
            with live.client():
                pass
    assert live.stats()["clients"] == 0 and live.stats()["clients_total"] == 2


def _read_parts(resp, n: int) -> list[bytes]:
    """The first n JPEGs of a multipart/x-mixed-replace response body."""
    buf, jpegs = b"", []
    for chunk in resp.response:
        buf += chunk
        while True:
            head = buf.find(b"\r\n\r\n")
            if head < 0:
                break
            length = int([h for h in buf[:head].split(b"\r\n") if h.startswith(b"Content-Length")][0].split(b":")[1])
            if len(buf) < head + 4 + length + 2:
                break
            jpegs.append(buf[head + 4:head + 4 + length])
            buf = buf[head + 4 + length + 2:]
        if len(jpegs) >= n:
            return jpegs[:n]
    return jpegs


def test_mjpeg_and_live_api_through_the_app(tmp_path, fer_faces, live_pipeline):
    """Viewers connect and disconnect while the source runs; the stream and the counters survive."""
    video = write_video(tmp_path / "v.avi", fer_faces, n_frames=60, fps=20.0)
    pool = StillPool([live_pipeline], labels=live_pipeline.labels, model_name="m")
    with make_live(video, live_pipeline, max_clients=2) as live:
        client = create_app(WebConfig(), pool, live).test_client()
        for _ in range(3):  # connect, read, disconnect, again
            resp = client.get("/stream.mjpg", buffered=False)
            assert resp.status_code == 200
            assert resp.mimetype == "multipart/x-mixed-replace"
            assert resp.headers["X-Content-Type-Options"] == "nosniff"
            jpegs = _read_parts(resp, 2)
            assert len(jpegs) == 2
            image = cv2.imdecode(np.frombuffer(jpegs[1], np.uint8), cv2.IMREAD_COLOR)
            assert image.shape == (240, 320, 3)
            assert client.get("/api/stats").get_json()["live"]["clients"] == 1
            resp.close()
            assert client.get("/api/stats").get_json()["live"]["clients"] == 0
        body = client.get("/api/live").get_json()
        assert body["seq"] >= 0 and body["stats"]["state"] in ("running", "ended")
        assert client.get("/api/health").get_json()["live"] is True
        wait_for(lambda: live.finished, what="the end of the video")
        stats = client.get("/api/stats").get_json()["live"]
        assert stats["state"] == ENDED and stats["clients_total"] == 3
        # A viewer arriving after the end still sees the last frame, then the stream closes.
        resp = client.get("/stream.mjpg", buffered=False)
        assert len(_read_parts(resp, 5)) == 1
        resp.close()


def test_nothing_is_drawn_or_encoded_while_nobody_watches(tmp_path, fer_faces, live_pipeline):
    """Faces are published for the API either way; JPEGs only while a viewer is connected."""
    video = write_video(tmp_path / "long.avi", fer_faces, n_frames=300)  # 30 s at 10 fps, real time
    drawn = []

    def counting_draw(image, result, fps):
        drawn.append(result.frame.index)
        return draw(image, result, fps)

    spec = parse_source(str(video))
    live = LiveStream(lambda: Capture.from_spec(spec, realtime=True), live_pipeline, counting_draw,
                      lambda result: face_records(result, with_ids=True), source_name=str(video))
    with live:
        wait_for(lambda: live.latest() is not None and live.latest().seq >= 2, what="three frames")
        unwatched = live.latest()
        assert unwatched.jpeg == b"" and len(unwatched.faces) == 1 and drawn == []
        with live.client():
            parts = []
            for part in live.mjpeg(MJPEG_BOUNDARY):
                parts.append(part)
                if len(parts) == 2:
                    break
        assert len(drawn) >= 2  # encoded for the viewer only
        image = cv2.imdecode(np.frombuffer(parts[1].split(b"\r\n\r\n", 1)[1][:-2], np.uint8), cv2.IMREAD_COLOR)
        assert image is not None and image.shape == (240, 320, 3)


@pytest.mark.parametrize("workers", [1, 2])
def test_every_frame_is_published_in_order_with_either_worker_count(tmp_path, fer_faces, live_pipeline, workers):
    """Detection on this thread or one frame ahead on a second: frames still come out in order."""
    video = write_video(tmp_path / "v.avi", fer_faces, n_frames=12)
    live_pipeline.reset()
    spec = parse_source(str(video))
    seen = []

    def records(result):
        seen.append(result.frame.index)
        return face_records(result, with_ids=True)

    live = LiveStream(lambda: Capture.from_spec(spec, realtime=False), live_pipeline,
                      lambda image, result, fps: draw(image, result, fps), records, source_name=str(video),
                      workers=workers)
    with live:
        wait_for(lambda: live.finished, what="the end of the video")
        assert live.stats()["state"] == ENDED and live.stats()["frames"] == 12
        assert live.latest().jpeg  # the last frame is encoded for late viewers
    assert seen == list(range(12))
    assert not live._thread.is_alive()

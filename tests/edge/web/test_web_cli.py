"""edge/web/cli.py: a real `fer-edge serve` in a subprocess, over real HTTP on 127.0.0.1."""

from __future__ import annotations

import http.client
import json
import time

import psutil
import pytest

from edge.cli import main
from web_helpers import encode, start_server, write_video

TOKEN = "cli-t0ken"
MB = 1024 * 1024


@pytest.fixture(scope="module")
def server(tmp_path_factory, fer_faces, detector_dir, emotion_model):
    video = write_video(tmp_path_factory.mktemp("serve") / "v.avi", fer_faces, n_frames=160, fps=20.0)
    srv = start_server("--token", TOKEN, "--source", str(video), "--threads", "4", "--pipelines", "1")
    yield srv
    srv.stop()


def test_listens_on_loopback_only_by_default(server):
    listening = [c.laddr for c in psutil.Process(server.proc.pid).net_connections(kind="inet")
                 if c.status == psutil.CONN_LISTEN]
    assert listening and {a.ip for a in listening} == {"127.0.0.1"}, listening
    assert server.url.startswith("http://127.0.0.1:")
    assert "WARNING" not in server.output


def _mjpeg_parts(host: str, port: int, n: int, timeout_s: float = 30.0) -> int:
    """Open the stream, read n JPEG parts, hang up; returns how many parts were read."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout_s)
    conn.request("GET", f"/stream.mjpg?token={TOKEN}")
    resp = conn.getresponse()
    assert resp.status == 200 and resp.getheader("Content-Type").startswith("multipart/x-mixed-replace")
    seen, buf = 0, b""
    while seen < n:
        chunk = resp.read1(65536)
        if not chunk:
            break
        buf += chunk
        seen = buf.count(b"Content-Type: image/jpeg")
    conn.close()
    return seen


def _stats(server) -> dict:
    return json.loads(server.get("/api/stats", TOKEN)[2])["live"]


def wait_for(predicate, timeout_s=30.0, what="condition"):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_stream_survives_viewers_coming_and_going_then_shows_the_end(server):
    host, port = server.url[len("http://"):].rsplit(":", 1)
    for _ in range(3):
        assert _stats(server)["state"] == "running"  # the video lasts 8 s
        assert _mjpeg_parts(host, int(port), 2) == 2
        # The server notices the hang-up on its next write and frees the viewer's slot.
        wait_for(lambda: _stats(server)["clients"] == 0, what="the viewer to be counted out")
    wait_for(lambda: _stats(server)["state"] == "ended", what="the source to end")
    stats = _stats(server)
    assert stats["frames"] > 0 and stats["clients_total"] >= 1 and stats["error"] == ""
    # The server still answers after its source ended.
    assert server.get("/api/health", TOKEN)[0] == 200


@pytest.mark.parametrize("path", ["/api/health", "/api/stats", "/api/live", "/stream.mjpg"])
def test_token_over_http(server, path):
    status, headers, body = server.get(path)
    assert status == 401 and "token" in json.loads(body)["error"]
    if path != "/stream.mjpg":  # a stream never ends by itself; read it below
        assert server.get(path, TOKEN)[0] == 200


def test_pages_load_without_token(server):
    for path in ("/", "/live", "/webcam", "/static/app.css"):
        status, headers, _ = server.get(path)
        assert status == 200 and headers["X-Frame-Options"] == "DENY", path


def test_predict_over_http(server, face_scene):
    status, headers, body = server.post_image("/api/predict", encode(face_scene[0], ".jpg"), TOKEN)
    assert status == 200, body
    assert headers["Content-Type"] == "application/json"
    faces = json.loads(body)["faces"]
    assert len(faces) == 1 and faces[0]["emotion"] in json.loads(server.get("/api/health", TOKEN)[2])["labels"]
    assert server.post_image("/api/predict", encode(face_scene[0], ".jpg"))[0] == 401


def test_oversized_upload_gets_413_json_through_waitress(server):
    status, headers, body = server.post_image("/api/predict", b"\xff\xd8\xff" + bytes(11 * MB), TOKEN)
    assert status == 413 and "10 MB" in json.loads(body)["error"]


def test_bad_image_over_http(server):
    status, _, body = server.post_image("/api/predict", b"GIF89a" + bytes(100), TOKEN, filename="x.gif")
    assert status == 400 and "not an image" in json.loads(body)["error"]


def test_env_token_warning_on_all_interfaces_and_clean_stop(detector_dir, emotion_model):
    srv = start_server("--host", "0.0.0.0", "--pipelines", "2", env={"FER_EDGE_TOKEN": "from-env"})
    try:
        assert "WARNING: listening on 0.0.0.0" in srv.output
        assert "no token" not in srv.output
        url = srv.url.replace("0.0.0.0", "127.0.0.1")
        srv.url = url
        assert srv.get("/api/health")[0] == 401
        status, _, body = srv.get("/api/health", "from-env")
        assert status == 200 and json.loads(body)["pipelines"] == 2
    finally:
        rc = srv.stop()
    assert rc == 0, srv.output
    assert "fer-edge serve: stopped" in srv.output


@pytest.mark.parametrize("argv, words", [
    (["serve", "--token", " "], "token is empty"),
    (["serve", "--pipelines", "0"], "--pipelines"),
    (["serve", "--threads", "1"], "--threads"),
    (["serve", "--port", "70000"], "--port"),
    (["serve", "--max-fps", "-1"], "--max-fps"),
    (["serve", "--source", "/no/such/video.mp4"], "unknown source"),
    (["serve", "--model", "/no/such/model.tflite"], "emotion model not found"),
])
def test_bad_arguments_are_clean_errors(argv, words, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("fer-edge serve: error:") and words in err

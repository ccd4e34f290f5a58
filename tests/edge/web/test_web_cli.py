"""edge/web/cli.py: a real `fer-edge serve` in a subprocess, over real HTTP on 127.0.0.1."""

from __future__ import annotations

import http.client
import json
import socket
import time

import cv2
import numpy as np
import psutil
import pytest

from edge.cli import main
from web_helpers import encode, start_server, write_video

TOKEN = "cli-t0ken"
MB = 1024 * 1024


@pytest.fixture(scope="module")
def server(tmp_path_factory, fer_faces, detector_dir, emotion_model):
    video = write_video(tmp_path_factory.mktemp("serve") / "v.avi", fer_faces, n_frames=160, fps=20.0)
    srv = start_server("--token", TOKEN, "--source", str(video), "--http-threads", "4", "--pipelines", "1")
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


def test_a_file_waits_for_its_first_viewer_then_survives_viewers_coming_and_going_then_shows_the_end(server):
    host, port = server.url[len("http://"):].rsplit(":", 1)
    time.sleep(1.0)  # the server has been up a while: a file does not play to nobody
    stats = _stats(server)
    assert stats["state"] == "waiting" and stats["frames"] == 0, stats
    for _ in range(3):
        assert _mjpeg_parts(host, int(port), 2) == 2
        assert _stats(server)["state"] == "running"  # the video lasts 8 s, from the first viewer on
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


@pytest.mark.parametrize("announced_mb, raw", [
    (25, b"POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n"),
    (1024, b"PUT /api/predict HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"),
])
def test_upload_far_over_the_cap_is_refused_in_json_before_the_body(server, announced_mb, raw):
    """Over twice the cap, waitress refuses from the Content-Length alone, before any byte of
    the body arrives; the answer is still the API's JSON."""
    host, port = server.url.split("//")[1].rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(raw % (announced_mb * MB))
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413"), head
    assert b"Content-Type: application/json" in head
    assert json.loads(body) == {"error": "upload too large: the limit is 10 MB (fer-edge serve --max-upload-mb)"}


def test_malformed_request_gets_json_error(server):
    host, port = server.url.split("//")[1].rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(b"POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Length: nonsense\r\n\r\n")
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400"), head
    assert "error" in json.loads(body)


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
    (["serve", "--http-threads", "1"], "--http-threads"),
    (["serve", "--threads", "0"], "--threads must be >= 1"),
    (["serve", "--port", "70000"], "--port"),
    (["serve", "--max-fps", "-1"], "--max-fps"),
    (["serve", "--source", "/no/such/video.mp4"], "file not found: /no/such/video.mp4"),
    (["serve", "--model", "/no/such/model.tflite"], "emotion model not found"),
])
def test_bad_arguments_are_clean_errors(argv, words, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("fer-edge serve: error:") and words in err


# --- ordinary photos, size limits and rejections, through a real server ---------------------------


def _photo_1080p(fer_faces) -> np.ndarray:
    """A 1920x1080 'photo': two faces on a smooth, lit background with sensor-like noise."""
    rng = np.random.default_rng(7)
    yy, xx = np.mgrid[0:1080, 0:1920].astype(np.float32)
    background = np.stack([90 + 60 * np.sin(xx / 300), 110 + 50 * np.cos(yy / 200),
                           130 + 40 * np.sin((xx + yy) / 500)], axis=-1)
    image = np.clip(background + rng.normal(0, 3, background.shape), 0, 255).astype(np.uint8)
    for face, (x, y) in zip(fer_faces[:2], ((300, 250), (1200, 300))):
        big = cv2.resize(face, (420, 420), interpolation=cv2.INTER_CUBIC)
        image[y:y + 420, x:x + 420] = cv2.cvtColor(big, cv2.COLOR_GRAY2BGR)
    return image


@pytest.fixture(scope="module")
def upload_server(detector_dir, emotion_model):
    """`fer-edge serve` with its default upload cap (10 MB) and no token."""
    srv = start_server("--pipelines", "1")
    yield srv
    srv.stop()


def test_ordinary_photos_up_to_the_cap_are_accepted(upload_server, fer_faces):
    photo = _photo_1080p(fer_faces)
    jpeg = encode(photo, ".jpg", cv2.IMWRITE_JPEG_QUALITY, 92)
    png = encode(photo, ".png")
    assert 200 * 1024 <= len(jpeg) <= 600 * 1024 and 2.5 * MB <= len(png) <= 4 * MB, (len(jpeg), len(png))
    for data, name in ((jpeg, "photo.jpg"), (png, "photo.png")):
        status, _, body = upload_server.post_image("/api/predict", data, filename=name)
        assert status == 200, (name, body[:300])
        answer = json.loads(body)
        assert (answer["width"], answer["height"]) == (1920, 1080)
        assert len(answer["faces"]) == 2, (name, answer["faces"])


def test_rejections_are_counted_and_logged_one_line_each(upload_server):
    before = json.loads(upload_server.get("/api/stats")[2])
    # 12 MB of real image: a 2048x2048 noise PNG (4.2 MP, under the pixel cap; over the 10 MB cap).
    noise = np.random.default_rng(1).integers(0, 256, (2048, 2048, 3), dtype=np.uint8)
    big = encode(noise, ".png")
    assert len(big) > 12 * MB
    tiff = encode(noise[:200, :200], ".tiff")
    cases = [(big, "big.png", 413, "10 MB"), (b"junk, not an image\n" * 40, "junk.jpg", 400, "not an image"),
             (tiff, "scan.tiff", 400, "TIFF")]
    for data, name, status, words in cases:
        got, headers, body = upload_server.post_image("/api/predict", data, filename=name)
        assert got == status and headers["Content-Type"] == "application/json", (name, got, body[:200])
        assert words in json.loads(body)["error"], body
    after = json.loads(upload_server.get("/api/stats")[2])
    assert after["api_requests"] - before["api_requests"] == 3
    assert after["api_errors"] - before["api_errors"] == 3
    by_status = after["rejected"]["by_status"]
    old = before["rejected"]["by_status"]
    assert by_status.get("413", 0) - old.get("413", 0) == 1 and by_status.get("400", 0) - old.get("400", 0) == 2
    assert after["rejected"]["total"] == sum(by_status.values())

    def logged() -> list[str]:
        return [line for line in upload_server.lines if "rejected POST /api/predict" in line]

    wait_for(lambda: len(logged()) >= 3, what="three rejection log lines")
    lines = logged()
    assert len(lines) == 3, lines
    assert ": 413 upload too large" in lines[0] and ": 400 " in lines[1] and "TIFF" in lines[2]


@pytest.mark.parametrize("method, path", [("GET", "/nope"), ("GET", "/api/nope"), ("DELETE", "/api/health")])
def test_unknown_paths_and_methods_are_answered_in_json(server, method, path):
    host, port = server.url[len("http://"):].rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    conn.request(method, path, headers={"Authorization": f"Bearer {TOKEN}"})
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    assert resp.status in (404, 405) and resp.getheader("Content-Type") == "application/json", body
    assert json.loads(body)["error"]


def test_health_names_no_folder_and_gives_the_threshold_in_use(server):
    health = json.loads(server.get("/api/health", TOKEN)[2])
    from edge.detect.tiling import TILES_SCORE_THRESHOLD

    assert health["score_threshold"] == TILES_SCORE_THRESHOLD  # the default scan tiles (not the whole-frame 0.65)
    text = json.dumps(health)
    assert "/" not in text.replace("\\/", ""), text  # no path of this machine (nor of the training one)

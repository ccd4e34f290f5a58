"""edge/web/app.py through Flask's test client: the API contract, bad input, tokens and headers.

Real pipeline (BlazeFace + the shipped int8 emotion model), real FER-2013 faces.
"""

from __future__ import annotations

import io
import json
import re
from html import unescape

import numpy as np
import pytest

from edge.pipeline import Pipeline
from edge.classify.sidecar import load_sidecar
from edge.web.app import MB, SECURITY_HEADERS, InMemoryRequest, StillPool, WebConfig, create_app
from web_helpers import encode, iou, scene
from test_web_decode import _bomb

TOKEN = "t0ken-for-tests"


@pytest.fixture(scope="module")
def stills(detector_dir, emotion_model):
    pipeline = Pipeline.from_defaults(smooth=False, emotion_model=str(emotion_model))
    pool = StillPool([pipeline], labels=pipeline.labels, model_name=emotion_model.name)
    yield pool
    pool.close()


@pytest.fixture(scope="module")
def client(stills):
    return create_app(WebConfig(), stills).test_client()


@pytest.fixture(scope="module")
def token_client(stills):
    return create_app(WebConfig(token=TOKEN), stills).test_client()


def post(client, data: bytes, filename="face.jpg", field="image", **kw):
    return client.post("/api/predict", data={field: (io.BytesIO(data), filename)},
                       content_type="multipart/form-data", **kw)


@pytest.mark.parametrize("ext", [".jpg", ".png", ".webp"])
def test_predict_contract(client, face_scene, emotion_model, ext):
    image, placed = face_scene
    resp = post(client, encode(image, ext), filename="face" + ext)
    assert resp.status_code == 200, resp.get_json()
    assert resp.mimetype == "application/json"
    body = resp.get_json()
    assert (body["width"], body["height"]) == (640, 480)
    assert isinstance(body["latency_ms"], float) and body["latency_ms"] > 0
    labels = list(load_sidecar(emotion_model).labels)
    assert len(body["faces"]) == 1
    face = body["faces"][0]
    assert {"box", "emotion", "confidence", "probs"} <= set(face)
    x1, y1, x2, y2 = face["box"]
    assert all(isinstance(v, int) for v in face["box"])
    assert 0 <= x1 < x2 <= 640 and 0 <= y1 < y2 <= 480
    assert iou(face["box"], placed) > 0.3, (face["box"], placed)
    assert list(face["probs"]) == labels
    assert sum(face["probs"].values()) == pytest.approx(1.0, abs=0.02)
    assert face["emotion"] in labels
    assert face["emotion"] == max(face["probs"], key=face["probs"].get)  # stills: no smoothing
    assert face["confidence"] == pytest.approx(face["probs"][face["emotion"]], abs=1e-3)
    assert "id" not in face  # track ids mean nothing for stills


def test_predict_finds_every_face_and_none_on_a_blank(client, fer_faces):
    two = scene(fer_faces[:2], [(40, 120, 220), (360, 100, 240)])
    faces = post(client, encode(two, ".jpg")).get_json()["faces"]
    assert len(faces) == 2
    assert sorted(f["box"][0] < 320 for f in faces) == [False, True]  # one on each side
    blank = np.full((300, 400, 3), 120, np.uint8)
    body = post(client, encode(blank, ".png")).get_json()
    assert body["faces"] == [] and (body["width"], body["height"]) == (400, 300)


def test_stills_do_not_share_state(client, face_scene):
    """The same image twice gives the same answer: no tracking or smoothing across requests."""
    data = encode(face_scene[0], ".png")
    first = post(client, data).get_json()["faces"]
    post(client, encode(np.ascontiguousarray(face_scene[0][:, ::-1]), ".png"))  # something else in between
    again = post(client, data).get_json()["faces"]
    assert first == again


BAD_UPLOADS = {
    # name: (kwargs for client.post, status, words in the error)
    "no image field": (dict(data={"file": (io.BytesIO(b"x"), "a.jpg")}, content_type="multipart/form-data"),
                       400, "field 'image'"),
    "json body": (dict(json={"image": "aGVsbG8="}), 400, "field 'image'"),
    "empty file": (dict(data={"image": (io.BytesIO(b""), "a.jpg")}, content_type="multipart/form-data"),
                   400, "empty"),
    "text file": (dict(data={"image": (io.BytesIO(b"hello world\n" * 50), "a.jpg")},
                       content_type="multipart/form-data"), 400, "not an image"),
    "html file": (dict(data={"image": (io.BytesIO(b"<html><script>alert(1)</script></html>"), "a.png")},
                       content_type="multipart/form-data"), 400, "not an image"),
}


@pytest.mark.parametrize("name", sorted(BAD_UPLOADS))
def test_bad_requests_get_400_json(client, name):
    kwargs, status, words = BAD_UPLOADS[name]
    resp = client.post("/api/predict", **kwargs)
    assert resp.status_code == status
    assert words in resp.get_json()["error"]


@pytest.mark.parametrize("kind", ["truncated-jpeg", "corrupt-png", "bmp", "bomb-png", "bomb-jpeg", "bomb-webp"])
def test_undecodable_and_bomb_images_get_400(client, face_scene, kind):
    image = face_scene[0]
    data = {
        "truncated-jpeg": encode(image, ".jpg")[:2000],
        "corrupt-png": encode(image, ".png")[:60] + bytes(5000),
        "bmp": encode(image, ".bmp"),
        "bomb-png": _bomb("png"),
        "bomb-jpeg": _bomb("jpeg"),
        "bomb-webp": _bomb("webp-lossy"),
    }[kind]
    resp = post(client, data)
    assert resp.status_code == 400
    error = resp.get_json()["error"]
    assert ("accepts at most" in error) == kind.startswith("bomb"), error


def test_pixel_cap_is_configurable(stills, face_scene):
    small = create_app(WebConfig(max_pixels=100_000), stills).test_client()
    resp = post(small, encode(face_scene[0], ".jpg"))  # 640x480 = 307200 pixels
    assert resp.status_code == 400 and "307200 pixels" in resp.get_json()["error"]
    ok = post(small, encode(face_scene[0][:240, :320], ".jpg"))
    assert ok.status_code == 200


def test_upload_over_the_cap_gets_413_json(stills, face_scene):
    capped = create_app(WebConfig(max_upload_bytes=1 * MB), stills).test_client()
    big = encode(face_scene[0], ".png") + bytes(2 * MB)  # a valid PNG with trailing junk, 2+ MB
    resp = post(capped, big, filename="big.png")
    assert resp.status_code == 413
    assert resp.mimetype == "application/json" and "1 MB" in resp.get_json()["error"]
    # Just under the cap passes the size check and is decoded (the junk after IEND is ignored).
    assert post(capped, encode(face_scene[0], ".png")).status_code == 200


def test_default_upload_cap_is_10_mb(client):
    resp = post(client, b"\xff\xd8\xff" + bytes(11 * MB))
    assert resp.status_code == 413 and "10 MB" in resp.get_json()["error"]


def test_uploads_stay_in_memory(stills):
    """Werkzeug would spool a multipart file over 500 KB to a temp file; this app keeps it in RAM."""
    app = create_app(WebConfig(), stills)
    payload = b"\x89PNG" + bytes(3 * MB)
    boundary = "b0undary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"x.png\"\r\n"
            f"Content-Type: image/png\r\n\r\n").encode() + payload + f"\r\n--{boundary}--\r\n".encode()
    with app.test_request_context("/api/predict", method="POST", data=body,
                                  content_type=f"multipart/form-data; boundary={boundary}"):
        from flask import request

        assert isinstance(request._get_current_object(), InMemoryRequest)
        stream = request.files["image"].stream
        assert isinstance(stream, io.BytesIO)
        assert stream.getbuffer().nbytes == len(payload)


@pytest.mark.parametrize("method, path, status", [
    ("get", "/api/predict", 405),
    ("get", "/api/nope", 404),
    ("get", "/api/live", 404),  # no live source
    ("get", "/stream.mjpg", 404),
])
def test_api_errors_are_json(client, method, path, status):
    resp = getattr(client, method)(path)
    assert resp.status_code == status
    assert resp.mimetype == "application/json" and resp.get_json()["error"]


def test_health_names_the_model_and_labels(client, emotion_model):
    body = client.get("/api/health").get_json()
    assert body["model"] == emotion_model.name
    assert body["labels"] == list(load_sidecar(emotion_model).labels)
    assert body["live"] is False


def test_stats_count_api_calls(stills, face_scene):
    c = create_app(WebConfig(), stills).test_client()
    post(c, encode(face_scene[0], ".jpg"))
    post(c, b"junk")
    body = c.get("/api/stats").get_json()
    assert (body["api_requests"], body["api_errors"]) == (2, 1)
    assert body["rejected"] == {"total": 1, "by_status": {"400": 1}}
    assert body["live"] is None and body["pipelines"] == 1


def test_every_rejection_is_counted_and_logged(stills, face_scene, caplog):
    c = create_app(WebConfig(token=TOKEN, max_upload_bytes=1 * MB), stills).test_client()
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with caplog.at_level("INFO", logger="edge.web.app"):
        assert post(c, encode(face_scene[0], ".jpg")).status_code == 401
        assert post(c, b"\xff\xd8\xff" + bytes(2 * MB), headers=auth).status_code == 413
        assert post(c, b"junk", headers=auth).status_code == 400
        assert c.get("/api/nope", headers=auth).status_code == 404
        assert post(c, encode(face_scene[0], ".jpg"), headers=auth).status_code == 200
    body = c.get("/api/stats", headers=auth).get_json()
    assert body["rejected"] == {"total": 4, "by_status": {"400": 1, "401": 1, "404": 1, "413": 1}}
    assert (body["api_requests"], body["api_errors"]) == (4, 3)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("rejected ")]
    assert len(lines) == 4 and all("\n" not in line for line in lines), lines
    assert "rejected POST /api/predict from 127.0.0.1: 401 missing or wrong token" in lines[0]
    assert ": 413 upload too large: the limit is 1 MB" in lines[1] and ": 400 not an image" in lines[2]


def test_the_upload_cap_means_what_it_says(stills):
    """Real images just under and just over the cap: incompressible PNGs, 4 MB cap."""
    capped = create_app(WebConfig(max_upload_bytes=4 * MB), stills).test_client()
    rng = np.random.default_rng(3)
    under = encode(rng.integers(0, 256, (1200, 1100, 3), dtype=np.uint8), ".png")
    over = encode(rng.integers(0, 256, (1300, 1200, 3), dtype=np.uint8), ".png")
    assert 3.5 * MB < len(under) < 4 * MB < len(over)
    resp = post(capped, under, filename="under.png")
    assert resp.status_code == 200 and (resp.get_json()["width"], resp.get_json()["height"]) == (1100, 1200)
    assert post(capped, over, filename="over.png").status_code == 413


@pytest.mark.parametrize("path", ["/", "/live", "/webcam", "/static/app.css", "/static/common.js",
                                  "/api/health", "/api/stats", "/api/nope", "/nope"])
def test_security_headers_on_every_response(client, path):
    resp = client.get(path)
    for name, value in SECURITY_HEADERS.items():
        assert resp.headers.get(name) == value, (path, name)
    csp = resp.headers["Content-Security-Policy"]
    assert "script-src 'self';" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp


def test_security_headers_on_errors(client):
    for resp in (post(client, b"junk"), post(client, b"\xff\xd8\xff" + bytes(11 * MB))):
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        assert resp.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("path", ["/", "/live", "/webcam"])
def test_pages_have_no_inline_script_and_only_local_assets(client, path):
    html = client.get(path).get_data(as_text=True)
    assert "<script>" not in html and "onclick" not in html.lower() and " style=" not in html
    urls = re.findall(r'(?:src|href)="([^"]*)"', html)
    assert urls and all(u.startswith("/") and not u.startswith("//") for u in urls), urls  # no CDN
    assert 'src="/static/common.js"' in html


@pytest.mark.parametrize("path", ["/api/health", "/api/stats", "/api/live", "/stream.mjpg"])
def test_token_required_for_api_and_stream(token_client, path):
    resp = token_client.get(path)
    assert resp.status_code == 401
    assert "token" in resp.get_json()["error"] and resp.headers["WWW-Authenticate"].startswith("Bearer")
    assert token_client.get(path, headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert token_client.get(path + "?token=wrong").status_code == 401


def test_token_accepted_as_header_or_query(token_client, face_scene):
    assert token_client.get("/api/health", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    assert token_client.get(f"/api/health?token={TOKEN}").status_code == 200
    data = encode(face_scene[0], ".jpg")
    assert post(token_client, data).status_code == 401
    resp = post(token_client, data, headers={"Authorization": f"Bearer {TOKEN}"})
    assert resp.status_code == 200 and len(resp.get_json()["faces"]) == 1


@pytest.mark.parametrize("path", ["/", "/live", "/webcam", "/static/common.js"])
def test_pages_load_without_token_and_say_auth_is_needed(token_client, path):
    resp = token_client.get(path)
    assert resp.status_code == 200
    if path != "/static/common.js":
        assert 'data-auth="1"' in resp.get_data(as_text=True)


def test_page_settings_come_from_data_attributes(client, emotion_model):
    html = client.get("/").get_data(as_text=True)
    assert 'data-auth="0"' in html and 'data-live="0"' in html
    labels = re.search(r'data-labels="([^"]*)"', html).group(1)
    assert json.loads(unescape(labels)) == list(load_sidecar(emotion_model).labels)


@pytest.mark.parametrize("n_pipelines", [1, 2])
def test_concurrent_requests_get_the_serial_answers(detector_dir, emotion_model, fer_faces, n_pipelines):
    """Request threads share the pipelines (a lock, or a pool): answers match one-at-a-time ones."""
    from concurrent.futures import ThreadPoolExecutor

    pipelines = [Pipeline.from_defaults(smooth=False, emotion_model=str(emotion_model)) for _ in range(n_pipelines)]
    pool = StillPool(pipelines, labels=pipelines[0].labels, model_name="m")
    app = create_app(WebConfig(), pool)
    images = [encode(scene([f], [(60 + 40 * i, 40, 200 + 20 * i)]), ".jpg") for i, f in enumerate(fer_faces)]
    try:
        serial = [post(app.test_client(), data).get_json()["faces"] for data in images]
        assert all(len(faces) == 1 for faces in serial)
        with ThreadPoolExecutor(max_workers=6) as ex:
            answers = list(ex.map(lambda i: (i, post(app.test_client(), images[i]).get_json()["faces"]),
                                  [i % len(images) for i in range(24)]))
        for i, faces in answers:
            assert faces == serial[i]
    finally:
        pool.close()


def test_page_colours_are_the_overlay_colours(client, emotion_model):
    """Boxes drawn in the page and in the MJPEG frames (edge.outputs.overlay) use the same colour per label."""
    from edge.outputs.overlay import label_color

    html = client.get("/").get_data(as_text=True)
    colors = json.loads(unescape(re.search(r'data-colors="([^"]*)"', html).group(1)))
    labels = load_sidecar(emotion_model).labels
    assert list(colors) == list(labels)
    for i, label in enumerate(labels):
        b, g, r = label_color(label, i)
        assert colors[label] == f"#{r:02x}{g:02x}{b:02x}"

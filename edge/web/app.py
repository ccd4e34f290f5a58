"""The Flask app: upload page, live page, browser-webcam page and the JSON API.

Built by `create_app(config, stills, live)`; `fer-edge serve` (edge/web/cli.py) runs it under
waitress. Stills (API uploads, webcam frames) go through their own pipelines, never the live
one, so a stray upload cannot feed the live tracker or its smoothing.
"""

from __future__ import annotations

import hmac
import io
import json
import logging
import queue
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import numpy as np
from flask import Flask, Request, Response, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from edge.outputs.overlay import label_color
from edge.record import frame_record
from edge.types import FrameResult
from edge.web import DEFAULT_MAX_PIXELS, DEFAULT_MAX_UPLOAD_MB
from edge.web.decode import ImageError, decode_image
from edge.web.live import LiveStream, TooManyClients

log = logging.getLogger(__name__)

MB = 1024 * 1024
MJPEG_BOUNDARY = b"ferframe"
# Werkzeug 3.1's multipart decoder applies this limit to its read buffer, file parts included:
# that buffer holds one 64 KiB read plus the few bytes kept back at a possible boundary, so a
# 64 KiB limit refused ordinary photos with 413. 1 MiB is far above that buffer and still bounds
# the text fields (this API takes none); the file itself is capped by MAX_CONTENT_LENGTH.
MAX_FORM_MEMORY_BYTES = 1 * MB

# No inline script or style anywhere: pages get their settings from data- attributes.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
       "media-src 'self' blob: mediastream:; connect-src 'self'; object-src 'none'; "
       "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Permissions-Policy": "camera=(self), microphone=(), geolocation=()",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}


@dataclass(frozen=True)
class WebConfig:
    token: str | None = None  # None: no authentication (loopback use)
    max_upload_bytes: int = int(DEFAULT_MAX_UPLOAD_MB * MB)
    max_pixels: int = DEFAULT_MAX_PIXELS


def face_records(result: FrameResult, with_ids: bool = False) -> list[dict]:
    """FrameResult -> the API's `faces`: box, emotion, confidence, probs (+ detector score).

    Built from edge.record.frame_record, the one record format of the project; track ids only
    mean something on the live stream, so stills leave them out.
    """
    faces = frame_record(result)["faces"]
    if not with_ids:
        for face in faces:
            face.pop("id", None)
    return faces


class StillPool:
    """N still-image pipelines shared by the request threads; N=1 is a plain lock.

    `process(image_bgr)` borrows a pipeline for one call. Each pipeline has its own
    interpreters (a TFLite interpreter must not be invoked from two threads at once). Stills
    are unrelated single frames: the pipeline's tracks are reset before each one, so no
    smoothing or track state carries from one request to the next.
    """

    def __init__(self, pipelines: list, labels: tuple[str, ...], model_name: str, timeout_s: float = 30.0):
        if not pipelines:
            raise ValueError("StillPool needs at least one pipeline")
        self.labels = tuple(labels)
        self.model_name = model_name
        self.size = len(pipelines)
        self._timeout_s = timeout_s
        self._all = list(pipelines)
        self._free: queue.Queue = queue.Queue()
        for p in pipelines:
            self._free.put(p)

    @contextmanager
    def borrow(self) -> Iterator[object]:
        try:
            pipeline = self._free.get(timeout=self._timeout_s)
        except queue.Empty:
            raise PoolBusy(f"all {self.size} pipelines stayed busy for {self._timeout_s:.0f} s") from None
        try:
            yield pipeline
        finally:
            self._free.put(pipeline)

    def process(self, image_bgr: np.ndarray) -> FrameResult:
        with self.borrow() as pipeline:
            pipeline.reset()
            return pipeline.process(image_bgr, index=0, t=0.0)

    def close(self) -> None:
        for p in self._all:
            p.close()


class PoolBusy(RuntimeError):
    pass


class InMemoryRequest(Request):
    """Werkzeug spools uploads over 500 KB to a temporary file; keep them in memory instead.

    The body is already capped by MAX_CONTENT_LENGTH, and nothing from a request may touch disk.
    """

    def _get_file_stream(self, total_content_length, content_type, filename=None, content_length=None):
        return io.BytesIO()


def _error(status: int, message: str, **extra) -> Response:
    resp = jsonify({"error": message, **extra})
    resp.status_code = status
    return resp


def _is_protected(path: str) -> bool:
    return path.startswith("/api/") or path.startswith("/stream") or path == "/metrics"


def create_app(config: WebConfig, stills: StillPool, live: LiveStream | None = None,
               info: dict | None = None, metrics=None) -> Flask:
    """The WSGI app. `info` adds fields to /api/health (model path, detector...); `metrics`
    (edge.outputs.metrics.Metrics) is served at GET /metrics for Prometheus."""
    # Long by design: Flask's app factory, one short closure per route and hook over this app's
    # own state (config, pool, live stream, counters). Split up, that state would have to be
    # passed around or made global; each closure reads on its own.
    app = Flask(__name__)
    app.request_class = InMemoryRequest
    # Multipart framing adds a few hundred bytes around the file; allow them on top of the cap.
    app.config["MAX_CONTENT_LENGTH"] = config.max_upload_bytes + 64 * 1024
    app.config["MAX_FORM_MEMORY_SIZE"] = MAX_FORM_MEMORY_BYTES
    app.json.sort_keys = False
    token = config.token.encode() if config.token else None
    started = time.monotonic()
    counters = {"api_requests": 0, "api_errors": 0}
    rejected: dict[str, int] = {}  # HTTP status -> requests answered with it (>= 400)
    counters_lock = threading.Lock()
    upload_mb = config.max_upload_bytes / MB
    page_data = {
        "auth": "1" if token else "0",
        "live": "1" if live is not None else "0",
        "labels": json.dumps(list(stills.labels)),
        # The overlay's BGR colours as CSS hex, so the page and the MJPEG frames agree.
        "colors": json.dumps({label: "#%02x%02x%02x" % label_color(label, i)[::-1]
                              for i, label in enumerate(stills.labels)}),
        "max_upload_bytes": str(config.max_upload_bytes),
        "model": stills.model_name,
    }

    def count_response(resp: Response) -> None:
        """Counts every answer of /api/predict and every rejection (status >= 400), logging each rejection."""
        status = resp.status_code
        with counters_lock:
            if request.path == "/api/predict":
                counters["api_requests"] += 1
                counters["api_errors"] += status >= 400
            if status >= 400:
                rejected[str(status)] = rejected.get(str(status), 0) + 1
        if status >= 400:
            body = resp.get_json(silent=True) if resp.is_json else None
            reason = body.get("error") if isinstance(body, dict) else resp.status
            log.log(logging.WARNING if status >= 500 else logging.INFO, "rejected %s %s from %s: %d %s",
                    request.method, request.path, request.remote_addr or "?", status, reason)

    @app.before_request
    def check_token():
        if token is None or not _is_protected(request.path):
            return None
        given = ""
        auth = request.headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            given = auth[len("Bearer "):].strip()
        elif "token" in request.args:  # for <img src> and links, which cannot send headers
            given = request.args.get("token", "")
        if given and hmac.compare_digest(given.encode(), token):
            return None
        resp = _error(401, "missing or wrong token: open the page once with ?token=YOUR_TOKEN, "
                           "or send 'Authorization: Bearer YOUR_TOKEN'")
        resp.headers["WWW-Authenticate"] = 'Bearer realm="fer-edge"'
        return resp

    @app.after_request
    def count_rejections(resp: Response) -> Response:
        count_response(resp)
        return resp

    @app.after_request
    def security_headers(resp: Response) -> Response:
        for k, v in SECURITY_HEADERS.items():
            resp.headers.setdefault(k, v)
        if _is_protected(request.path):
            resp.headers["Cache-Control"] = "no-store"
        return resp

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        # An unknown path or method is answered in JSON anywhere: an API client that mistypes a
        # path gets a parsable error. Other errors on the pages stay Flask's own.
        if not _is_protected(request.path) and exc.code not in (404, 405):
            return exc
        if exc.code == 413:
            return _error(413, f"upload too large: the limit is {upload_mb:g} MB "
                               "(fer-edge serve --max-upload-mb)")
        return _error(exc.code or 500, exc.description or exc.name)

    @app.errorhandler(Exception)
    def unexpected_error(exc: Exception):
        log.exception("unhandled error on %s", request.path)
        if _is_protected(request.path):
            return _error(500, "internal error; see the server log")
        return Response("internal error; see the server log", status=500, mimetype="text/plain")

    # --- pages ----------------------------------------------------------------------------------

    def page(name: str, active: str):
        return render_template(name, active=active, data=page_data, model=stills.model_name,
                               upload_mb=upload_mb, has_live=live is not None, labels=stills.labels)

    @app.get("/")
    def upload_page():
        return page("upload.html", "upload")

    @app.get("/live")
    def live_page():
        return page("live.html", "live")

    @app.get("/webcam")
    def webcam_page():
        return page("webcam.html", "webcam")

    # --- API --------------------------------------------------------------------------------------

    @app.get("/api/health")
    def health():
        return jsonify({"status": "ok", "model": stills.model_name, "labels": list(stills.labels),
                        "live": live is not None, "pipelines": stills.size, **(info or {})})

    @app.post("/api/predict")
    def predict():
        t0 = time.perf_counter()
        upload = request.files.get("image")
        if upload is None:
            return _error(400, "send the image as multipart/form-data field 'image' (JPEG, PNG or WebP)")
        data = upload.read()
        if not data:
            return _error(400, "the 'image' field is empty")
        try:
            image_bgr = decode_image(data, config.max_pixels)
        except ImageError as exc:
            return _error(400, str(exc))
        del data
        try:
            result = stills.process(image_bgr)
        except PoolBusy as exc:
            return _error(503, f"server busy: {exc}; retry later")
        h, w = image_bgr.shape[:2]
        t = result.timings
        return jsonify({
            "faces": face_records(result),
            "latency_ms": round((time.perf_counter() - t0) * 1000.0, 2),
            "width": int(w),
            "height": int(h),
            "timings_ms": {"detect": round(t.detect_ms, 2), "preprocess": round(t.preprocess_ms, 2),
                           "classify": round(t.classify_ms, 2), "total": round(t.total_ms, 2)},
        })

    @app.get("/api/stats")
    def stats():
        with counters_lock:
            api = dict(counters)
            by_status = dict(sorted(rejected.items()))
        body = {"uptime_s": round(time.monotonic() - started, 1), "pipelines": stills.size, **api,
                "rejected": {"total": sum(by_status.values()), "by_status": by_status},
                "live": live.stats() if live is not None else None}
        return jsonify(body)

    @app.get("/api/live")
    def live_latest():
        """The latest live frame's faces plus the stream's stats (the live page polls this)."""
        if live is None:
            return _error(404, "no live source: start the server with --source (camera index, video or URL)")
        frame = live.latest()
        return jsonify({
            "seq": frame.seq if frame else -1,
            "faces": frame.faces if frame else [],
            "stats": live.stats(),
            "shares": live.shares(),
        })

    @app.get("/metrics")
    def prometheus_metrics():
        if metrics is None:
            return _error(404, "no metrics: prometheus-client is not installed on the server (the [web] extra); "
                               "install it and restart the server")
        return Response(metrics.text(), content_type=metrics.content_type)

    @app.get("/stream.mjpg")
    def stream():
        if live is None:
            return _error(404, "no live source: start the server with --source (camera index, video or URL)")
        try:
            body = _ClientStream(live)
        except TooManyClients as exc:
            return _error(503, str(exc))
        return Response(body, mimetype="multipart/x-mixed-replace; boundary=" + MJPEG_BOUNDARY.decode(),
                        headers={"X-Accel-Buffering": "no"}, direct_passthrough=True)

    return app


class _ClientStream:
    """The MJPEG body: holds one viewer slot from creation until the server closes it.

    A class rather than a bare generator: WSGI servers call close() even when the client left
    before the first part, and a never-started generator would skip its `finally`.
    """

    def __init__(self, live: LiveStream):
        self._guard = live.client()
        self._guard.__enter__()  # raises TooManyClients
        self._parts = live.mjpeg(MJPEG_BOUNDARY)
        self._released = False

    def __iter__(self):
        return self._parts

    def close(self) -> None:
        try:
            self._parts.close()
        finally:
            if not self._released:
                self._released = True
                self._guard.__exit__(None, None, None)

"""`fer-edge serve`: the web UI and JSON API under waitress (a production WSGI server; runs on a Pi)."""

from __future__ import annotations

import argparse
import ipaddress
import json
import logging
import os
import sys
from pathlib import Path

from edge.cli import CliError, HelpFormatter, StopOnSignals, install_hint

log = logging.getLogger(__name__)

TOKEN_ENV = "FER_EDGE_TOKEN"
# Still-image pipelines. One behind a lock measured as fast as a pool of two on 2 cores (each
# interpreter already uses the cores; two only contend): see benchmarks/commands/web_load.py.
DEFAULT_PIPELINES = 1


def register(sub) -> None:
    from edge.cli.pipeline_flags import add_pipeline_args
    from edge.web import DEFAULT_MAX_PIXELS, DEFAULT_MAX_UPLOAD_MB

    p = sub.add_parser(
        "serve", help="web UI and JSON API: upload photos, watch a live annotated stream, use the browser's webcam",
        formatter_class=HelpFormatter,
        description="Serve the web UI (Upload, Live, Webcam pages) and the JSON API with waitress.\n"
        "Binds to 127.0.0.1 unless --host says otherwise; with --token (or $FER_EDGE_TOKEN) every\n"
        "API and stream request needs the token (open a page once as /?token=T).",
        epilog="examples:\n  fer-edge serve                       # http://127.0.0.1:8000/\n"
        "  fer-edge serve --source 0            # plus the live page on camera 0\n"
        "  fer-edge serve --source video.mp4 --port 8080\n"
        "  FER_EDGE_TOKEN=s3cret fer-edge serve --host 0.0.0.0 --source picamera2  # Pi on the LAN\n"
        "  curl -F image=@face.jpg http://127.0.0.1:8000/api/predict",
    )
    s = p.add_argument_group("server")
    s.add_argument("--host", default="127.0.0.1",
                   help="address to listen on; 0.0.0.0 exposes the server to the network (use --token)")
    s.add_argument("--port", type=int, default=8000, help="TCP port (0: any free port, printed at start)")
    s.add_argument("--token", default=None,
                   help=f"access token for the API and the stream (default: ${TOKEN_ENV}; neither: no auth)")
    s.add_argument("--max-upload-mb", type=float, default=DEFAULT_MAX_UPLOAD_MB,
                   help="largest accepted upload; bigger ones get HTTP 413")
    s.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS,
                   help="largest accepted image (width x height), checked from the header before decoding")
    s.add_argument("--http-threads", type=int, default=8,
                   help="HTTP worker threads; each MJPEG viewer holds one while it watches")
    s.add_argument("--pipelines", type=int, default=DEFAULT_PIPELINES,
                   help="still-image pipelines shared by API requests (1: one pipeline behind a lock; more: "
                   "each with 1 interpreter thread unless --threads says otherwise)")
    s.add_argument("--max-stream-clients", type=int, default=None,
                   help="MJPEG viewers at once (default: --http-threads minus 2, so the API stays responsive)")
    lv = p.add_argument_group("live source (the Live page)")
    lv.add_argument("--source", default=None,
                    help="camera index, video file, rtsp/http URL or picamera2 (default: none, no Live stream)")
    lv.add_argument("--width", type=int, default=None, help="camera capture width (default: the camera's own)")
    lv.add_argument("--height", type=int, default=None, help="camera capture height (default: the camera's own)")
    lv.add_argument("--fps", type=float, default=None, help="camera capture frame rate (default: the camera's own)")
    lv.add_argument("--max-fps", type=float, default=0.0,
                    help="process at most this many live frames/s, leaving CPU for the API (0: no limit)")
    lv.add_argument("--jpeg-quality", type=int, default=80, help="MJPEG quality (1-100)")
    add_pipeline_args(p.add_argument_group("models"), groups=("detector", "model"))
    # Tracking and smoothing apply to the live stream; API stills are unrelated images.
    add_pipeline_args(p.add_argument_group("runtime (as fer-edge run)"), groups=("runtime", "tracking"))
    p.set_defaults(func=_cmd_serve)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def public_source_name(spec) -> str:
    """How the pages name the live source: a file's name without its folders, a URL without
    its user and password."""
    from pathlib import Path
    from urllib.parse import urlsplit, urlunsplit

    if spec.kind in ("video", "image", "folder"):
        return Path(spec.target).name or spec.target
    if spec.kind == "url":
        parts = urlsplit(spec.target)
        host = parts.hostname or ""
        netloc = f"[{host}]" if ":" in host else host
        if parts.port:
            netloc += f":{parts.port}"
        return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
    return spec.target


def _check_args(args: argparse.Namespace) -> str | None:
    token = args.token if args.token is not None else os.environ.get(TOKEN_ENV)
    if token is not None and not token.strip():
        raise CliError(f"the token is empty: give --token T (or ${TOKEN_ENV}) a value, or leave both unset")
    if not 0 <= args.port <= 65535:
        raise CliError(f"--port must be 0-65535, got {args.port}")
    if args.max_upload_mb <= 0 or args.max_pixels <= 0:
        raise CliError("--max-upload-mb and --max-pixels must be > 0")
    if args.http_threads < 2:
        raise CliError("--http-threads must be >= 2 (one for the API even while the stream is watched)")
    if args.pipelines < 1:
        raise CliError("--pipelines must be >= 1")
    if args.max_fps < 0:
        raise CliError("--max-fps must be >= 0")
    if not 1 <= args.jpeg_quality <= 100:
        raise CliError("--jpeg-quality must be 1-100")
    return token.strip() if token else None


def _build_pipelines(args: argparse.Namespace, n: int):
    """n still pipelines (smoothing off) and, with --source, one live pipeline."""
    from edge.cli.pipeline_flags import config_from_args, open_pipeline

    live_config = config_from_args(args)
    # With a pool, the parallelism comes from the pool: one interpreter thread per still
    # pipeline unless --threads says otherwise (more would only oversubscribe the cores).
    still_threads = live_config.threads if live_config.threads is not None else (1 if n > 1 else None)
    still_config = live_config.replace(smooth=False, threads=still_threads)
    built = []
    try:
        for _ in range(n):
            built.append(open_pipeline(still_config))
        live = open_pipeline(live_config) if args.source is not None else None
    except CliError:
        for p in built:
            p.close()
        raise
    return built, live


def _cmd_serve(args: argparse.Namespace) -> int:
    from edge.cli import require

    require("flask", "web")
    require("waitress", "web")
    token = _check_args(args)
    if "cv2" not in sys.modules:
        # OpenCV reads its decoder pixel limit once, when it loads: a second line of defence
        # behind the header check in edge.web.decode.
        os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(args.max_pixels))
    return serve(args, token)


def _live_stream(args: argparse.Namespace, spec, live_pipeline, metrics=None):
    """The Live page's stream: the live pipeline on --source, frames detected one ahead on a
    second thread while the previous one is drawn and encoded."""
    from edge.capture.thread import Capture
    from edge.outputs.overlay import draw
    from edge.web.app import face_records
    from edge.web.live import LiveStream

    # Unrelated stills: no remembered faces or tracks across them.
    fresh = (lambda _frame: True) if spec.images else None
    max_clients = args.max_stream_clients if args.max_stream_clients is not None else max(1, args.http_threads - 2)
    # Files play at their own frame rate (realtime), dropping frames when the CPU falls behind.
    return LiveStream(
        lambda: Capture.from_spec(spec, width=args.width, height=args.height, fps=args.fps, realtime=True),
        live_pipeline, lambda image, result, fps: draw(image, result, fps),
        lambda result: face_records(result, with_ids=True),
        source_name=public_source_name(spec), jpeg_quality=args.jpeg_quality, max_clients=max_clients,
        max_fps=args.max_fps, fresh=fresh,
        on_result=metrics.write if metrics is not None else None,
        wait_for_viewer=spec.kind == "video")  # a file plays for its first viewer, not to an empty room


def _json_error_channel(max_upload_bytes: int):
    """A waitress channel whose own errors (a body over its cap, a malformed request) are JSON
    like the app's, so that an API client parses every answer the same way."""
    from waitress.channel import HTTPChannel
    from waitress.task import ErrorTask

    from edge.web.app import MB

    class JsonErrorTask(ErrorTask):
        def execute(self) -> None:
            err = self.request.error
            if err.code == 413:
                message = (f"upload too large: the limit is {max_upload_bytes / MB:g} MB "
                           "(fer-edge serve --max-upload-mb)")
            else:
                message = f"{err.reason.lower()}: {err.body}"
            body = json.dumps({"error": message}).encode()
            self.status = f"{err.code} {err.reason}"
            self.response_headers.extend([("Content-Type", "application/json"),
                                          ("Content-Length", str(len(body)))])
            self.set_close_on_finish()
            self.content_length = len(body)
            self.write(body)

    class JsonErrorChannel(HTTPChannel):
        error_task_class = JsonErrorTask

    return JsonErrorChannel


def _create_server(args: argparse.Namespace, app, max_upload_bytes: int):
    import waitress

    from edge.web.app import MB

    # Bodies up to twice the upload cap reach Flask, which answers 413 with a JSON error; beyond
    # that waitress refuses them itself from the Content-Length alone, in JSON too. inbuf_overflow
    # above that cap keeps request bodies in memory: waitress would otherwise spool bodies over
    # 512 KB to a temporary file, and nothing from a request may touch the disk. connection_limit
    # bounds the memory that buffering can take.
    body_cap = 2 * max_upload_bytes + MB
    try:
        server = waitress.create_server(
            app, host=args.host, port=args.port, threads=args.http_threads, ident="fer-edge",
            max_request_body_size=body_cap, inbuf_overflow=body_cap + 1, connection_limit=32,
            expose_tracebacks=False, clear_untrusted_proxy_headers=True)
        channel_class = _json_error_channel(max_upload_bytes)
        # One listening socket gives one server; several (a name with IPv4 and IPv6) a map of them.
        for listener in [server, *getattr(server, "map", {}).values()]:
            if hasattr(listener, "channel_class"):
                listener.channel_class = channel_class
        return server
    except OSError as exc:
        raise CliError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from None


def _announce(args: argparse.Namespace, port: int, token: str | None, spec) -> None:
    host = args.host
    url_host = f"[{host}]" if ":" in host else host
    if not is_loopback(host):
        print(f"WARNING: listening on {host}:{port}: anyone who can reach this machine can use the server"
              + ("." if token else f" and there is no token (set --token or ${TOKEN_ENV})."),
              file=sys.stderr, flush=True)
    print(f"fer-edge serve: http://{url_host}:{port}/  (Upload, /live, /webcam; API: POST /api/predict, "
          f"GET /api/health, /api/stats; /metrics for Prometheus)"
          + ("; token required" if token else ""), flush=True)
    if spec is not None:
        print(f"fer-edge serve: live source {args.source} ({spec.kind})", flush=True)


def _metrics(args: argparse.Namespace, pipeline):
    """The live stream's Prometheus metrics (edge.outputs.metrics), as `fer-edge run --metrics-port` has them; None
    without prometheus-client (an install of the [web] extra from before it was part of it)."""
    try:
        from edge.outputs.metrics import Metrics
    except ImportError:
        log.warning("no /metrics: prometheus-client is not installed: %s", install_hint("web"))
        return None
    return Metrics(pipeline.labels, pipeline.classifier.model_path, detector=f"{args.detector} {args.range}")


def serve(args: argparse.Namespace, token: str | None) -> int:
    from edge.web.app import MB, StillPool, WebConfig, create_app

    spec = None
    if args.source is not None:
        from edge.capture.source import SourceError, parse_source

        try:
            spec = parse_source(args.source)
        except SourceError as exc:
            raise CliError(str(exc)) from None

    still_pipelines, live_pipeline = _build_pipelines(args, args.pipelines)
    first = still_pipelines[0]
    stills = StillPool(still_pipelines, labels=first.labels, model_name=first.classifier.model_path.name)
    # Public: file names only, never where files live on this machine.
    info = {"detector": args.detector, "range": args.range,
            "score_threshold": first.config.detector.threshold,
            "metrics": _public_metrics(first.card.metrics)}
    metrics = _metrics(args, first)
    live = _live_stream(args, spec, live_pipeline, metrics) if spec is not None else None
    if metrics is not None and live is not None:
        metrics.capture_stats = lambda: live.capture_stats
    config = WebConfig(token=token, max_upload_bytes=int(args.max_upload_mb * MB), max_pixels=args.max_pixels)
    try:
        server = _create_server(args, create_app(config, stills, live, info=info, metrics=metrics),
                                config.max_upload_bytes)
    except CliError:
        stills.close()
        if live_pipeline is not None:
            live_pipeline.close()
        raise
    _announce(args, server.effective_port, token, spec)
    try:
        # A signal raises KeyboardInterrupt on this thread, which unwinds waitress's loop.
        with StopOnSignals(interrupt=True):
            if live is not None:
                live.start()
            server.run()
    except KeyboardInterrupt:
        pass
    finally:
        if live is not None:
            live.close()  # wakes every MJPEG viewer; joins the live thread
        server.close()
        stills.close()
        if live_pipeline is not None:
            live_pipeline.close()
        print("fer-edge serve: stopped", file=sys.stderr, flush=True)
    return 0


def _public_metrics(metrics: dict) -> dict:
    """The model card's metrics without where files lived on the training machine (a path keeps
    its last part only, e.g. "fer2013")."""
    def public(value):
        if isinstance(value, str) and ("/" in value or os.sep in value):
            return Path(value).name
        if isinstance(value, dict):
            return {k: public(v) for k, v in value.items()}
        return value

    return public(dict(metrics or {}))

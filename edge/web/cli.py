"""`fer-edge serve`: the web UI and JSON API under waitress (a production WSGI server; runs on a Pi)."""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import signal
import sys
import threading
from dataclasses import replace

from edge.cli import CliError, HelpFormatter
from edge.run_cli import add_model_arguments

log = logging.getLogger(__name__)

TOKEN_ENV = "FER_EDGE_TOKEN"
# Still-image pipelines. One behind a lock measured as fast as a pool of two on 2 cores (each
# interpreter already uses the cores; two only contend): see benchmarks/web_load.py.
DEFAULT_PIPELINES = 1


def register(sub) -> None:
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
    s.add_argument("--threads", type=int, default=8,
                   help="HTTP worker threads; each MJPEG viewer holds one while it watches")
    s.add_argument("--pipelines", type=int, default=DEFAULT_PIPELINES,
                   help="still-image pipelines shared by API requests (1: one pipeline behind a lock)")
    s.add_argument("--max-stream-clients", type=int, default=None,
                   help="MJPEG viewers at once (default: --threads minus 2, so the API stays responsive)")
    lv = p.add_argument_group("live source (the Live page)")
    lv.add_argument("--source", default=None,
                    help="camera index, video file, rtsp/http URL or picamera2 (default: none, no Live stream)")
    lv.add_argument("--width", type=int, default=None, help="camera capture width (default: the camera's own)")
    lv.add_argument("--height", type=int, default=None, help="camera capture height (default: the camera's own)")
    lv.add_argument("--fps", type=float, default=None, help="camera capture frame rate (default: the camera's own)")
    lv.add_argument("--max-fps", type=float, default=0.0,
                    help="process at most this many live frames/s, leaving CPU for the API (0: no limit)")
    lv.add_argument("--no-smooth", action="store_true", help="raw per-frame labels on the live stream")
    lv.add_argument("--jpeg-quality", type=int, default=80, help="MJPEG quality (1-100)")
    m = p.add_argument_group("models")
    add_model_arguments(m)
    m.add_argument("--model-threads", type=int, default=None,
                   help="interpreter threads per model, as `fer-edge run --threads` (default: the "
                   "runtime's choice, and 1 per still pipeline when --pipelines > 1)")
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
    if args.threads < 2:
        raise CliError("--threads must be >= 2 (one for the API even while the stream is watched)")
    if args.pipelines < 1:
        raise CliError("--pipelines must be >= 1")
    if args.model_threads is not None and args.model_threads < 1:
        raise CliError("--model-threads must be >= 1")
    if args.max_fps < 0:
        raise CliError("--max-fps must be >= 0")
    if not 1 <= args.jpeg_quality <= 100:
        raise CliError("--jpeg-quality must be 1-100")
    return token.strip() if token else None


def _build_pipelines(args: argparse.Namespace, n: int):
    """n still pipelines (smoothing off) and, with --source, one live pipeline."""
    from pathlib import Path

    from edge.models import ModelNotFoundError
    from edge.pipeline import Pipeline, PipelineConfig
    from edge.sidecar import SidecarError

    if args.model is not None and not Path(args.model).is_file():
        raise CliError(f"emotion model not found: {args.model} (--model expects a .tflite with its .json "
                       "sidecar beside it; leave it out to use the shipped models/emotion_int8.tflite)")
    if args.detector == "mediapipe":
        from edge.cli import require

        require("mediapipe", "mediapipe")
    live_config = PipelineConfig(detector=args.detector, range=args.range, detector_model=args.detector_model,
                                 emotion_model=args.model, threads=args.model_threads,
                                 score_threshold=args.score_threshold, smooth=not args.no_smooth,
                                 scan=args.scan, min_face_px=args.min_face_px,
                                 tiles_per_frame=args.tiles_per_frame)
    # With a pool, the parallelism comes from the pool: one interpreter thread per still
    # pipeline unless --model-threads says otherwise (more would only oversubscribe the cores).
    still_threads = args.model_threads if args.model_threads is not None else (1 if n > 1 else None)
    still_config = replace(live_config, smooth=False, threads=still_threads)
    built = []
    try:
        for _ in range(n):
            built.append(Pipeline.from_config(still_config))
        live = Pipeline.from_config(live_config) if args.source is not None else None
    except ModelNotFoundError as exc:
        _close_all(built)
        raise CliError(str(exc)) from None
    except SidecarError as exc:
        _close_all(built)
        raise CliError(f"model sidecar does not fit: {exc}") from None
    except (ValueError, OSError) as exc:
        _close_all(built)
        raise CliError(f"cannot load the models: {exc}") from None
    return built, live


def _close_all(pipelines) -> None:
    for p in pipelines:
        p.close()


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


def serve(args: argparse.Namespace, token: str | None) -> int:
    import waitress

    from edge.web.app import MB, StillPool, WebConfig, create_app, face_records
    from edge.web.live import LiveStream

    spec = None
    if args.source is not None:
        from edge.capture import SourceError, parse_source

        try:
            spec = parse_source(args.source)
        except SourceError as exc:
            raise CliError(str(exc)) from None

    still_pipelines, live_pipeline = _build_pipelines(args, args.pipelines)
    first = still_pipelines[0]
    stills = StillPool(still_pipelines, labels=first.labels, model_name=first.classifier.model_path.name)
    # Public: file names only, never where files live on this machine.
    info = {"detector": args.detector, "range": args.range, "score_threshold": args.score_threshold,
            "metrics": first.card.metrics}
    live = None
    if spec is not None:
        from edge.capture import Capture
        from edge.overlay import draw
        from edge.pipeline import stages

        # Unrelated stills: no remembered faces or tracks across them. Frames are detected on a
        # second thread while the previous one is drawn and encoded.
        fresh = (lambda _frame: True) if spec.images else None

        max_clients = args.max_stream_clients if args.max_stream_clients is not None else max(1, args.threads - 2)
        # Files play at their own frame rate (realtime), dropping frames when the CPU falls behind.
        live = LiveStream(
            lambda: Capture.from_spec(spec, width=args.width, height=args.height, fps=args.fps, realtime=True),
            live_pipeline.process_frame, lambda image, result, fps: draw(image, result, fps),
            lambda result: face_records(result, with_ids=True),
            source_name=public_source_name(spec), jpeg_quality=args.jpeg_quality, max_clients=max_clients,
            max_fps=args.max_fps, stages=lambda capture: stages(live_pipeline, capture, fresh=fresh))

    config = WebConfig(token=token, max_upload_bytes=int(args.max_upload_mb * MB), max_pixels=args.max_pixels)
    app = create_app(config, stills, live, info=info)
    # Bodies up to twice the upload cap reach Flask, which answers 413 with a JSON error; beyond
    # that waitress refuses them itself (plain-text 413) from the Content-Length alone. inbuf_overflow
    # above that cap keeps request bodies in memory: waitress would otherwise spool bodies over
    # 512 KB to a temporary file, and nothing from a request may touch the disk. connection_limit
    # bounds the memory that buffering can take.
    body_cap = 2 * config.max_upload_bytes + MB
    try:
        server = waitress.create_server(
            app, host=args.host, port=args.port, threads=args.threads, ident="fer-edge",
            max_request_body_size=body_cap, inbuf_overflow=body_cap + 1, connection_limit=32,
            expose_tracebacks=False, clear_untrusted_proxy_headers=True)
    except OSError as exc:
        stills.close()
        if live_pipeline is not None:
            live_pipeline.close()
        raise CliError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from None

    port = server.effective_port
    host = args.host
    url_host = f"[{host}]" if ":" in host else host
    if not is_loopback(host):
        print(f"WARNING: listening on {host}:{port}: anyone who can reach this machine can use the server"
              + ("." if token else f" and there is no token (set --token or ${TOKEN_ENV})."),
              file=sys.stderr, flush=True)
    print(f"fer-edge serve: http://{url_host}:{port}/  (Upload, /live, /webcam; API: POST /api/predict, "
          f"GET /api/health, /api/stats)"
          + ("; token required" if token else ""), flush=True)
    if spec is not None:
        print(f"fer-edge serve: live source {args.source} ({spec.kind})", flush=True)

    stop = threading.Event()

    def on_signal(signum, _frame):
        stop.set()
        raise KeyboardInterrupt  # unwinds waitress's loop on the main thread

    old = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            old[sig] = signal.signal(sig, on_signal)
    try:
        if live is not None:
            live.start()
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
        if live is not None:
            live.close()  # wakes every MJPEG viewer; joins the live thread
        server.close()
        stills.close()
        if live_pipeline is not None:
            live_pipeline.close()
        print("fer-edge serve: stopped", file=sys.stderr, flush=True)
    return 0

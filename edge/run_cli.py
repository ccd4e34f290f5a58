"""`fer-edge run`: live or offline recognition with a window, JSON Lines, video or image outputs.

Threads: the capture thread owns the source (edge.capture); detection, classification,
tracking, drawing and the window run here on the main thread. SIGINT and SIGTERM (and q/Esc
in the window) set one stop Event; the loop ends, every output is flushed and closed, the
capture thread is joined and a summary goes to stderr.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass, fields
from pathlib import Path

from edge.cli import CliError

log = logging.getLogger(__name__)

WINDOW = "fer-edge"


@dataclass(frozen=True)
class RunConfig:
    """Every `fer-edge run` option, parsed once from the command line."""

    source: str = "0"
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    realtime: bool = False
    detector: str = "blazeface"
    range: str = "short"
    detector_model: str | None = None
    model: str | None = None
    threads: int | None = None
    workers: int | None = None
    scan: str = "auto"
    min_face_px: float = 40.0
    tiles_per_frame: int = 1
    max_fps: float = 0.0
    smooth: bool = True
    ema_alpha: float = 0.4
    score_threshold: float = 0.5
    max_missed: int = 10
    headless: bool = False
    jsonl: str | None = None
    append: bool = False
    save_video: str | None = None
    out_dir: str | None = None

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "RunConfig":
        values = {f.name: getattr(args, f.name) for f in fields(cls) if f.name != "smooth"}
        return cls(smooth=not args.no_smooth, **values)

    def pipeline_config(self):
        from edge.pipeline import PipelineConfig

        return PipelineConfig(detector=self.detector, range=self.range, detector_model=self.detector_model,
                              emotion_model=self.model, threads=self.threads, scan=self.scan,
                              min_face_px=self.min_face_px, tiles_per_frame=self.tiles_per_frame,
                              score_threshold=self.score_threshold, smooth=self.smooth,
                              ema_alpha=self.ema_alpha, max_missed=self.max_missed)


def add_model_arguments(m) -> None:
    """The detector and emotion-model flags, shared by `fer-edge run` and `fer-edge serve`."""
    m.add_argument("--detector", choices=("blazeface", "mediapipe"), default="blazeface",
                   help="face detector backend: blazeface (LiteRT) or mediapipe (MediaPipe Tasks)")
    m.add_argument("--range", choices=("short", "full"), default="short",
                   help="detector model: short (faces within ~2 m) or full (up to ~5 m)")
    m.add_argument("--detector-model", default=None,
                   help="detector .tflite (default: $FER_EDGE_MODEL_DIR, then ~/.cache/fer-edge/models; "
                   "`fer-edge models pull` downloads it)")
    m.add_argument("--model", "--emotion-model", dest="model", default=None,
                   help="emotion .tflite with its .json sidecar (default: the shipped models/emotion_int8.tflite)")
    m.add_argument("--score-threshold", type=float, default=0.5, help="detector confidence")
    m.add_argument("--scan", choices=("auto", "frame", "tiles"), default="auto",
                   help="frame: the whole frame in one detector pass, faces from about 1/4 of the frame's long "
                   "side (160 px at 640x480); tiles: short range over tiles and regions around known faces, faces "
                   "from --min-face-px; auto: frame up to 960 px on the long side, tiles above (short range only)")
    m.add_argument("--min-face-px", type=float, default=40.0,
                   help="smallest supported face side in tiled frames, in frame pixels; smaller faces are found "
                   "less often (recall per face size: README *Group scenes*)")
    m.add_argument("--tiles-per-frame", type=int, default=1,
                   help="tiled streams: tiles scanned per frame besides the regions around known faces; more finds "
                   "new faces sooner at a higher cost per frame")


def register(sub) -> None:
    p = sub.add_parser(
        "run", help="recognise expressions live (camera) or in videos, images and streams",
        formatter_class=_Fmt,
        description="Detect faces, classify their expressions and track them. Default: camera 0\n"
        "in a window (q or Esc quits). --headless writes one JSON object per frame to stdout.",
        epilog="examples:\n  fer-edge run\n  fer-edge run --source video.mp4 --headless --jsonl out.jsonl\n"
        "  fer-edge run --source 'photos/*.jpg' --headless --out-dir annotated/\n"
        "  fer-edge run --source rtsp://cam.local/stream --headless\n"
        "  fer-edge run --source picamera2 --threads 4 --max-fps 10 --headless  # Raspberry Pi",
    )
    s = p.add_argument_group("source")
    s.add_argument("--source", default="0",
                   help="camera index, video file, image file, folder or glob of images, rtsp/http URL, "
                   "or picamera2 (Raspberry Pi camera)")
    s.add_argument("--width", type=int, default=None, help="camera capture width (camera, picamera2)")
    s.add_argument("--height", type=int, default=None, help="camera capture height")
    s.add_argument("--fps", type=float, default=None, help="camera capture frame rate")
    s.add_argument("--realtime", action="store_true",
                   help="play files at their frame rate and drop frames when processing falls behind "
                   "(default for files: process every frame)")
    add_model_arguments(p.add_argument_group("models"))
    r = p.add_argument_group("runtime")
    r.add_argument("--threads", type=int, default=None,
                   help="interpreter threads per model (default: 1, fastest for these small models on 2 cores, "
                   "and up to 2 for the tiled detector of large frames; try 2-4 on a Pi)")
    r.add_argument("--workers", type=int, choices=(1, 2), default=None,
                   help="frame-loop threads: 2 detects the next frame while this one is classified, drawn and "
                   "written (more frames/s); 1 runs every stage on one thread (lower latency) (default: 2)")
    r.add_argument("--max-fps", type=float, default=0.0, help="process at most this many frames/s (0: no limit)")
    r.add_argument("--no-smooth", action="store_true",
                   help="raw per-frame labels (no EMA of probabilities, no label hysteresis)")
    r.add_argument("--ema-alpha", type=float, default=0.4, help="weight of the newest frame in the smoothing")
    r.add_argument("--max-missed", type=int, default=10, help="frames a face track survives without a detection")
    o = p.add_argument_group("outputs")
    o.add_argument("--headless", action="store_true",
                   help="no window; JSON Lines to stdout unless --jsonl or --out-dir says where")
    o.add_argument("--jsonl", default=None, help="write one JSON object per processed frame to this file")
    o.add_argument("--append", action="store_true", help="append to --jsonl instead of overwriting it (services)")
    o.add_argument("--save-video", default=None, help="write the annotated frames to this video (.mp4 or .avi)")
    o.add_argument("--out-dir", default=None,
                   help="image/folder sources: annotated images and results.jsonl go here "
                   "(other sources: results.jsonl)")
    p.set_defaults(func=_cmd_run)


class _Fmt(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Defaults in --help (not the empty None/False ones), and the examples kept as written."""

    def _get_help_string(self, action):
        if action.default is None or action.default is False:
            return action.help
        return super()._get_help_string(action)


def _cmd_run(args: argparse.Namespace) -> int:
    return run(RunConfig.from_args(args))


# ---------------------------------------------------------------------------------------------


def _check_display(config: RunConfig, spec) -> None:
    if config.headless:
        return
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise CliError("no display ($DISPLAY is not set), so no window can open. Add --headless to write "
                       "JSON Lines to stdout (or --jsonl FILE), with --save-video FILE for an annotated video"
                       + (" or --out-dir DIR for annotated images" if spec.images else ""))


def _build_pipeline(config: RunConfig):
    from edge.models import ModelNotFoundError
    from edge.pipeline import Pipeline
    from edge.sidecar import SidecarError

    if config.model is not None and not Path(config.model).is_file():
        raise CliError(f"emotion model not found: {config.model} (--model expects a .tflite with its .json "
                       "sidecar beside it; leave it out to use the shipped models/emotion_int8.tflite)")
    if config.detector == "mediapipe":
        from edge.cli import require

        require("mediapipe", "mediapipe")
    try:
        if config.detector == "blazeface":
            from edge.models import resolve_detector_model

            resolve_detector_model(config.range, config.detector_model)  # names every way to supply it
        return Pipeline.from_config(config.pipeline_config())
    except ModelNotFoundError as exc:
        raise CliError(str(exc)) from None
    except SidecarError as exc:
        raise CliError(f"model sidecar does not fit: {exc}") from None
    except (ValueError, OSError) as exc:
        raise CliError(f"cannot load the models: {exc}") from None


def _source_error(spec, exc: BaseException) -> CliError:
    if spec.kind == "camera":
        return CliError(f"no camera at index {spec.target} ({exc}). To run on a file instead: "
                        "fer-edge run --source FILE (a video, an image, a folder or a glob of images)")
    return CliError(str(exc))


class _StopOnSignals:
    """SIGINT and SIGTERM set the stop Event instead of killing the process mid-write."""

    def __init__(self, stop: threading.Event):
        self.stop = stop
        self._old: dict[int, object] = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, _frame) -> None:
        if self.stop.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C: the user really wants out
        self.stop.set()

    def __exit__(self, *exc) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


def run(config: RunConfig, stop: threading.Event | None = None) -> int:
    """The `fer-edge run` loop. Returns the exit code; raises CliError for user errors."""
    import cv2

    from edge.capture import Capture, EndOfStream, SourceError, parse_source
    from edge.overlay import draw
    from edge.pipeline import stages
    from edge.sinks import ImageDirSink, JsonlSink, RunSummary, VideoSink, frame_record

    try:
        spec = parse_source(config.source)
    except SourceError as exc:
        raise CliError(str(exc)) from None
    _check_display(config, spec)
    if config.max_fps < 0 or (config.threads is not None and config.threads < 1):
        raise CliError("--max-fps must be >= 0 and --threads >= 1")
    stop = stop or threading.Event()
    window = not config.headless
    pipeline = _build_pipeline(config)

    jsonl = images = video = None
    summary = RunSummary()
    capture = Capture.from_spec(spec, width=config.width, height=config.height, fps=config.fps,
                                realtime=config.realtime)
    error: CliError | None = None
    try:
        if config.jsonl:
            jsonl = JsonlSink(config.jsonl, append=config.append)
        elif config.out_dir:
            jsonl = JsonlSink(Path(config.out_dir) / "results.jsonl")
        elif config.headless:
            jsonl = JsonlSink(stream=sys.stdout)
        if config.out_dir and spec.images:
            images = ImageDirSink(config.out_dir)
        if config.save_video:
            video = VideoSink(config.save_video, fps=config.fps or config.max_fps or 25.0)
        if window:
            cv2.namedWindow(WINDOW, cv2.WINDOW_AUTOSIZE)
        min_dt = 1.0 / config.max_fps if config.max_fps > 0 else 0.0
        need_image = window or images is not None or video is not None
        fps = None
        t_prev = None
        t_start = time.perf_counter()
        # Unrelated stills: no remembered faces, tracks or smoothing across them.
        fresh = (lambda _frame: True) if spec.images else None
        with _StopOnSignals(stop), capture, stages(pipeline, capture, config.workers, fresh=fresh) as loop:
            while not stop.is_set():
                try:
                    result = loop.next()
                except EndOfStream:
                    break
                except SourceError as exc:
                    error = _source_error(spec, exc)
                    break
                if result is None:
                    if window and (cv2.waitKey(1) & 0xFF) in (ord("q"), 27):
                        break
                    continue
                frame = result.frame
                summary.add(result)
                now = time.perf_counter()
                if t_prev is not None:
                    inst = 1.0 / max(now - t_prev, 1e-6)
                    fps = inst if fps is None else 0.9 * fps + 0.1 * inst
                t_prev = now
                if jsonl is not None:
                    jsonl.write(frame_record(result))
                if need_image:
                    annotated = draw(frame.image, result, fps)
                    if images is not None:
                        images.write(annotated, frame.source, frame.index)
                    if video is not None:
                        if video.frames == 0 and not config.fps and capture.media_fps:
                            video.fps = capture.media_fps
                        video.write(annotated)
                    if window and _show(annotated, stop, still=spec.images):
                        break
                if min_dt:
                    wait = t_prev + min_dt - time.perf_counter()
                    if wait > 0 and stop.wait(wait):
                        break
        summary.wall_s = time.perf_counter() - t_start
    finally:
        stats = capture.stats
        summary.drops, summary.skipped, summary.reconnects = stats.drops, stats.skipped, stats.reconnects
        for sink in (jsonl, video):
            if sink is not None:
                sink.close()
        pipeline.close()
        if window:
            cv2.destroyAllWindows()
            cv2.waitKey(1)
        print(summary.text(), file=sys.stderr, flush=True)
    if error is not None:
        raise error
    return 0


def _show(annotated, stop: threading.Event, still: bool) -> bool:
    """Show a frame; True when the user asked to quit (q, Esc, or closed the window)."""
    import cv2

    cv2.imshow(WINDOW, annotated)
    while True:
        key = cv2.waitKey(100 if still else 1) & 0xFF
        if key in (ord("q"), 27):
            return True
        try:
            if cv2.getWindowProperty(WINDOW, cv2.WND_PROP_VISIBLE) < 1:
                return True
        except cv2.error:
            return True
        # A still stays up until a key (any key: next image) or a stop signal.
        if not still or key != 255 or stop.is_set():
            return False

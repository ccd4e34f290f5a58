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
from typing import TYPE_CHECKING, Callable

from edge.cli import CliError, HelpFormatter
from edge.detector import DEFAULT_SCORE_THRESHOLD

if TYPE_CHECKING:
    from edge.sinks import RunSummary
    from edge.types import FrameResult

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
    fast: bool = False
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
    score_threshold: float = DEFAULT_SCORE_THRESHOLD
    max_missed: int = 10
    max_age_s: float = 2.0
    headless: bool = False
    jsonl: str | None = None
    append: bool = False
    save_video: str | None = None
    out_dir: str | None = None
    stats_interval_s: float = 60.0
    report: str | None = None
    hud: bool | None = None  # None: in the window for videos and cameras only
    bars: bool = True

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
                              ema_alpha=self.ema_alpha, max_missed=self.max_missed, max_age_s=self.max_age_s)


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
    m.add_argument("--score-threshold", type=float, default=DEFAULT_SCORE_THRESHOLD,
                   help="detector confidence below which a face is dropped; lower finds fainter faces and "
                   "more false ones (default: %(default)s, read off the curve `fer-edge bench threshold` measures)")
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
        formatter_class=HelpFormatter,
        description="Detect faces, classify their expressions and track them. Default: camera 0\n"
        "in a window (q or Esc quits). --headless writes one JSON object per frame to stdout.",
        epilog="examples:\n  fer-edge run\n  fer-edge run --source video.mp4 --headless --jsonl out.jsonl\n"
        "  fer-edge run --source 'photos/*.jpg' --headless --out-dir annotated/\n"
        "  fer-edge run --source rtsp://cam.local/stream --headless\n"
        "  fer-edge run --source picamera2 --threads 4 --max-fps 10 --headless  # Raspberry Pi",
    )
    s = p.add_argument_group("source")
    s.add_argument("--source", default="0",
                   help="camera index, video file, image file, folder (its top level only) or quoted glob of "
                   "images ('photos/**/*.jpg' takes sub-folders too), rtsp/http URL, or picamera2 (Raspberry Pi camera)")
    s.add_argument("--width", type=int, default=None, help="camera capture width (camera, picamera2; default: the camera's own)")
    s.add_argument("--height", type=int, default=None, help="camera capture height (default: the camera's own)")
    s.add_argument("--fps", type=float, default=None, help="camera capture frame rate (default: the camera's own)")
    s.add_argument("--realtime", action="store_true",
                   help="play video files at their own frame rate, dropping frames when processing falls "
                   "behind (the default in a window; headless runs process every frame)")
    s.add_argument("--fast", action="store_true",
                   help="in a window, process a video file as fast as possible instead of at its frame rate")
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
    r.add_argument("--max-missed", type=int, default=10, help="frames a face track survives without a detection...")
    r.add_argument("--max-age-s", type=float, default=2.0,
                   help="...or seconds, whichever is longer: a face missed this briefly keeps its id")
    o = p.add_argument_group("outputs")
    o.add_argument("--headless", action="store_true",
                   help="no window; JSON Lines to stdout unless --jsonl or --out-dir says where")
    o.add_argument("--jsonl", default=None,
                   help="write one JSON object per processed frame to this file (default: none, or stdout "
                   "with --headless)")
    o.add_argument("--append", action="store_true", help="append to --jsonl instead of overwriting it (services)")
    o.add_argument("--save-video", default=None,
                   help="write the annotated frames to this video, .mp4, .m4v, .mov, .mkv or .avi (default: none)")
    o.add_argument("--out-dir", default=None,
                   help="image/folder sources: annotated images and results.jsonl go here; other "
                   "sources: results.jsonl (default: none)")
    o.add_argument("--stats-interval-s", type=float, default=60.0,
                   help="with --headless, log an 'alive' line this often (frames, faces, frames/s, drops, "
                   "memory), so a service's journal shows it is working; 0: never")
    o.add_argument("--report", default=None, metavar="DIR",
                   help="when the run ends (also on Ctrl-C or SIGTERM), write the `fer-edge report` of its JSONL "
                   "here: timeline.png, summary.csv, frames.csv, report.md (the JSONL goes to DIR/run.jsonl "
                   "unless --jsonl or --out-dir names it; default: none)")
    o.add_argument("--hud", action=argparse.BooleanOptionalAction, default=None,
                   help="frames/s and stage latencies at the top left (default: in the window for videos "
                   "and cameras; not on images, nor in saved videos and images)")
    o.add_argument("--bars", action=argparse.BooleanOptionalAction, default=True,
                   help="class probabilities beside each face, or a compact bar under its label where "
                   "there is no room")
    p.set_defaults(func=_cmd_run)


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


def opencv_has_gui(build_info: str | None = None) -> bool:
    """False for OpenCV's headless builds (the Linux aarch64 / Raspberry Pi install), which cannot open windows."""
    import cv2

    text = cv2.getBuildInformation() if build_info is None else build_info
    for line in text.splitlines():
        key, _, value = line.strip().partition(":")
        if key == "GUI":
            return value.strip().upper() != "NONE"
    return True  # no GUI line: let OpenCV itself say what it can do


def _check_window_support(config: RunConfig) -> None:
    if not config.headless and not opencv_has_gui():
        raise CliError("this OpenCV is a headless build (the one a Raspberry Pi / Linux aarch64 install gets), "
                       "so no window can open. Add --headless to write JSON Lines (--save-video FILE for an "
                       "annotated video), or watch in a browser: fer-edge serve --source " + config.source)


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


def run(config: RunConfig, stop: threading.Event | None = None, *, summary: RunSummary | None = None,
        on_frame: Callable[[FrameResult], None] | None = None) -> int:
    """The `fer-edge run` loop. Returns the exit code; raises CliError for user errors.

    `summary`: a RunSummary to fill (read it after the run); `on_frame(result)` is called after
    each frame's outputs are written (`fer-edge bench soak` samples memory there).
    """
    import cv2

    from edge.capture import Capture, EndOfStream, SourceError, parse_source
    from edge.heartbeat import Heartbeat
    from edge.overlay import draw
    from edge.pipeline import stages
    from edge.sinks import ImageDirSink, JsonlSink, RunSummary, VideoSink, frame_record

    try:
        spec = parse_source(config.source)
    except SourceError as exc:
        raise CliError(str(exc)) from None
    _check_display(config, spec)
    _check_window_support(config)
    if config.max_fps < 0 or (config.threads is not None and config.threads < 1) or config.stats_interval_s < 0:
        raise CliError("--max-fps and --stats-interval-s must be >= 0, and --threads >= 1")
    if config.fast and config.realtime:
        raise CliError("--fast and --realtime contradict each other: choose one")
    report_config = _check_report(config)
    stop = stop or threading.Event()
    window = not config.headless
    # A video in a window plays at its own speed, as a player would; headless runs process
    # every frame as fast as they can.
    realtime = config.realtime or (window and spec.kind == "video" and not config.fast)
    if realtime and window and not config.realtime:
        log.info("playing %s at its own frame rate; --fast processes it as fast as possible", config.source)
    hud_window = config.hud if config.hud is not None else not spec.images
    hud_saved = bool(config.hud)  # frames/s of this run mean nothing in a file watched later
    try:  # the file name is checked here, before any work; the file opens on the first frame
        video = VideoSink(config.save_video, fps=config.fps or config.max_fps or 25.0) if config.save_video else None
    except ValueError as exc:
        raise CliError(str(exc)) from None
    pipeline = _build_pipeline(config)

    jsonl = images = None
    summary = summary if summary is not None else RunSummary()
    frames_with_faces = 0
    capture = Capture.from_spec(spec, width=config.width, height=config.height, fps=config.fps,
                                realtime=realtime)
    error: CliError | None = None
    try:
        if config.jsonl:
            jsonl = JsonlSink(config.jsonl, append=config.append)
        elif config.out_dir:
            jsonl = JsonlSink(Path(config.out_dir) / "results.jsonl")
        elif config.report:
            jsonl = JsonlSink(Path(config.report) / "run.jsonl")
        elif config.headless:
            jsonl = JsonlSink(stream=sys.stdout)
        if config.out_dir and spec.images:
            images = ImageDirSink(config.out_dir)
        if window:
            from edge.console import use_system_fonts_for_qt

            use_system_fonts_for_qt()
            cv2.namedWindow(WINDOW, cv2.WINDOW_AUTOSIZE)
        min_dt = 1.0 / config.max_fps if config.max_fps > 0 else 0.0
        fps = None
        t_prev = None
        t_start = time.perf_counter()
        heartbeat = Heartbeat(config.stats_interval_s if config.headless else 0.0, time.monotonic())
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
                if heartbeat.due(now_s := time.monotonic()):  # also while a camera is stalled
                    cs = capture.stats
                    log.info("%s", heartbeat.beat(now_s, cs.drops, cs.skipped, cs.reconnects).text())
                if result is None:
                    if window and (cv2.waitKey(1) & 0xFF) in (ord("q"), 27):
                        break
                    continue
                frame = result.frame
                summary.add(result)
                heartbeat.add(len(result.faces))
                frames_with_faces += len(result.faces) > 0
                now = time.perf_counter()
                if t_prev is not None:
                    inst = 1.0 / max(now - t_prev, 1e-6)
                    fps = inst if fps is None else 0.9 * fps + 0.1 * inst
                t_prev = now
                if jsonl is not None:
                    jsonl.write(frame_record(result))
                saved = None
                if images is not None or video is not None:
                    saved = draw(frame.image, result, fps, hud=hud_saved, bars=config.bars)
                    if images is not None:
                        images.write(saved, frame.source, frame.index)
                    if video is not None:
                        if video.frames == 0 and not config.fps and capture.media_fps:
                            video.fps = capture.media_fps
                        video.write(saved)
                if window:
                    hint = _still_hint(spec, frame.source) if spec.images else None
                    if saved is not None and hint is None and hud_window == hud_saved:
                        shown = saved
                    else:
                        shown = draw(frame.image, result, fps, hud=hud_window, bars=config.bars, hint=hint)
                    if hint:
                        cv2.setWindowTitle(WINDOW, f"{WINDOW}: {Path(frame.source).name} ({hint})")
                    if _show(shown, stop, still=spec.images):
                        break
                if on_frame is not None:
                    on_frame(result)
                if min_dt:
                    wait = t_prev + min_dt - time.perf_counter()
                    if wait > 0 and stop.wait(wait):
                        break
        summary.wall_s = time.perf_counter() - t_start
    except OSError as exc:  # an output that cannot be written (full disk, no permission): its reason, no traceback
        error = CliError(str(exc))
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
        if error is None or summary.frames:  # a source that never delivered ends with its error alone
            print(summary.text(), file=sys.stderr, flush=True)
    if report_config is not None:
        _write_run_report(config, report_config, error)
    if error is not None:
        raise error
    hint = no_face_hint(summary.frames, frames_with_faces, config)
    if hint:
        print(hint, file=sys.stderr, flush=True)
    return 0


def _check_report(config: RunConfig):
    """The ReportConfig for --report, checked before the run starts (None without --report)."""
    if not config.report:
        return None
    from edge.report import ReportConfig
    from edge.report_cli import check_chart

    if config.jsonl == "-":
        raise CliError("--report reads the run's JSONL back: give --jsonl a file name, not -")
    report_config = ReportConfig()
    check_chart(report_config)
    return report_config


def _write_run_report(config: RunConfig, report_config, error: CliError | None) -> None:
    from edge.report_cli import write_report

    # The file the JSONL sink wrote (the same precedence as in run()).
    if config.jsonl:
        jsonl_path = Path(config.jsonl)
    elif config.out_dir:
        jsonl_path = Path(config.out_dir) / "results.jsonl"
    else:
        jsonl_path = Path(config.report) / "run.jsonl"
    try:
        write_report(jsonl_path, config.report, report_config)
    except CliError as exc:
        if error is None:
            raise
        print(f"no report: {exc}", file=sys.stderr)  # the run's own error is the one to show


# Below this share of frames with a face, a run ends with advice on finding faces.
NO_FACE_SHARE = 0.05


def no_face_hint(frames: int, frames_with_faces: int, config: RunConfig) -> str | None:
    """What to try when faces were found in fewer than NO_FACE_SHARE of the frames; else None."""
    if frames == 0 or frames_with_faces >= NO_FACE_SHARE * frames:
        return None
    tips = []
    if config.scan != "tiles" and config.detector == "blazeface":
        tips.append(f"--scan tiles, when faces are small or far away (a frame up to 960 px wide is seen whole "
                    f"at 128x128 pixels, so it finds only faces wider than about a quarter of the frame; tiles "
                    f"find faces down to --min-face-px, now {config.min_face_px:g} px, at a higher cost)")
    if config.score_threshold > 0.5:
        tips.append(f"--score-threshold 0.5 (now {config.score_threshold:g}) finds fainter faces, "
                    "at the cost of more false ones")
    tips.append("a closer, frontal, evenly lit view of the faces")
    share = 100.0 * frames_with_faces / frames
    return (f"hint: faces were found in {frames_with_faces} of {frames} frames ({share:.1f} %). If there are "
            "people in view, try:\n" + "\n".join(f"  - {t}" for t in tips))


def _still_hint(spec, source: str) -> str:
    """The keys a still waits for, shown in its window (it waits for a key without saying so)."""
    n = len(spec.paths)
    k = spec.paths.index(source) + 1 if source in spec.paths else 0
    where = f"image {k}/{n}: " if n > 1 and k else ""
    return where + ("any key: next image   q or Esc: quit" if k < n else "any key or q: close")


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

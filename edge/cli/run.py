"""`fer-edge run`: live or offline recognition with a window, JSON Lines, video or image outputs.

Threads: the capture thread owns the source (edge.capture.thread); detection, classification,
tracking, drawing and the window run here on the main thread (detection one frame ahead on a
second thread with --workers 2). SIGINT and SIGTERM (and q/Esc in the window) set one stop
Event (edge.cli.StopOnSignals); the loop ends, every output (a Sink) is flushed and closed,
the capture thread is joined and a summary goes to stderr.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from edge.cli import CliError, HelpFormatter, StopOnSignals
from edge.pipeline import PipelineConfig

if TYPE_CHECKING:
    from edge.capture.source import SourceSpec
    from edge.outputs.mqtt_config import MqttConfig
    from edge.pipeline import Pipeline
    from edge.loop import FrameLoop, RunSummary
    from edge.outputs.sinks import Sink
    from edge.types import FrameResult

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class RunConfig:
    """Every `fer-edge run` option, parsed once from the command line."""

    source: str = "0"
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    realtime: bool = False
    fast: bool = False
    max_fps: float = 0.0
    headless: bool = False
    jsonl: str | None = None
    append: bool = False
    save_video: str | None = None
    out_dir: str | None = None
    stats_interval_s: float = 60.0
    report: str | None = None
    hud: bool | None = None  # None: in the window for videos and cameras only
    bars: bool = True
    mqtt: MqttConfig | None = None  # --mqtt and its flags (edge.outputs.mqtt_config)
    metrics_port: int | None = None
    metrics_host: str = "0.0.0.0"

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "RunConfig":
        from edge.cli.pipeline_flags import config_from_args
        from edge.outputs.remote_cli import mqtt_from_args

        values = {f.name: getattr(args, f.name) for f in fields(cls) if f.name not in ("pipeline", "mqtt")}
        return cls(pipeline=config_from_args(args), mqtt=mqtt_from_args(args), **values)


def register(sub) -> None:
    from edge.cli.pipeline_flags import add_pipeline_args
    from edge.outputs.remote_cli import add_remote_args

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
    add_pipeline_args(p.add_argument_group("models"), groups=("detector", "model"))
    r = p.add_argument_group("runtime")
    add_pipeline_args(r, groups=("runtime", "tracking"))
    r.add_argument("--max-fps", type=float, default=0.0, help="process at most this many frames/s (0: no limit)")
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
    add_remote_args(p)
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


def _source_error(spec, exc: BaseException) -> CliError:
    if spec.kind == "camera":
        return CliError(f"no camera at index {spec.target} ({exc}). To run on a file instead: "
                        "fer-edge run --source FILE (a video, an image, a folder or a glob of images)")
    return CliError(str(exc))


class _Run:
    """One `fer-edge run`: its outputs (a list of Sinks), window, counters and per-frame work."""

    def __init__(self, config: RunConfig, spec, stop: threading.Event, summary: RunSummary,
                 on_frame: Callable[[FrameResult], None] | None):
        from edge.outputs.heartbeat import Heartbeat
        from edge.outputs.sinks import SavedFrames, VideoSink

        self.config, self.spec, self.stop, self.summary, self.on_frame = config, spec, stop, summary, on_frame
        self.window = not config.headless
        self.win = None  # the RunWindow, once open_outputs has opened it
        self.hud_window = config.hud if config.hud is not None else not spec.images
        # The frames/s of this run mean nothing in a file watched later: no HUD there unless asked.
        self.saved: SavedFrames = SavedFrames(hud=bool(config.hud), bars=config.bars)
        try:  # the file name is checked here, before any work; the file opens on the first frame
            self.video: VideoSink | None = (VideoSink(config.save_video, fps=config.fps or config.max_fps or 25.0,
                                                      annotate=self.saved) if config.save_video else None)
        except ValueError as exc:
            raise CliError(str(exc)) from None
        self.sinks: list[Sink] = []
        self.frames_with_faces = 0
        self.heartbeat = Heartbeat(config.stats_interval_s if config.headless else 0.0, time.monotonic())
        self._t_prev: float | None = None  # for the HUD's frames/s
        self.where = "its start"  # the frame being written, for an output that fails mid-run

    def open_outputs(self, pipeline=None, capture=None) -> None:
        """The sinks (files open here: an unwritable one is an OSError; --metrics-port and --mqtt
        start here) and the window."""
        from edge.outputs.remote_cli import open_remote
        from edge.outputs.paths import make_output_folders
        from edge.outputs.sinks import ImageDirSink, JsonlSink

        config = self.config
        make_output_folders(config)
        if config.jsonl:
            self.sinks.append(JsonlSink(config.jsonl, append=config.append))
        elif config.out_dir:
            self.sinks.append(JsonlSink(Path(config.out_dir) / "results.jsonl", option="--out-dir"))
        elif config.report:
            self.sinks.append(JsonlSink(Path(config.report) / "run.jsonl", option="--report"))
        elif config.headless:
            self.sinks.append(JsonlSink(stream=sys.stdout))
        if config.out_dir and self.spec.images:
            self.sinks.append(ImageDirSink(config.out_dir, annotate=self.saved))
        if self.video is not None:
            self.sinks.append(self.video)
        self.sinks.extend(open_remote(config, pipeline, capture))
        if self.window:
            from edge.outputs.window import RunWindow

            self.win = RunWindow(self.stop)

    def loop(self, loop: FrameLoop, capture) -> CliError | None:
        """Frames until the source ends, a stop signal or the user quits; the source's error, if any."""
        from edge.capture.source import SourceError

        def on_result(result: FrameResult) -> bool:
            self._beat(capture)
            return self.frame(result, capture)

        def on_idle() -> bool:
            self._beat(capture)  # also while a camera is stalled
            return self.win is not None and self.win.poll_quit()

        try:
            loop.run(on_result, on_idle)
        except SourceError as exc:
            return _source_error(self.spec, exc)
        return None

    def _beat(self, capture) -> None:
        """The headless 'alive' line, when due."""
        if self.heartbeat.due(now_s := time.monotonic()):
            cs = capture.stats
            log.info("%s", self.heartbeat.beat(now_s, cs.drops, cs.skipped, cs.reconnects).text())

    def frame(self, result: FrameResult, capture) -> bool:
        """Count, write and show one result; True when the user asked to quit."""
        if self.video is not None and self.video.frames == 0 and not self.config.fps and capture.media_fps:
            self.video.fps = capture.media_fps
        if self.spec.images:
            from edge.outputs.window import renumbered

            result = renumbered(result)  # each photo's faces are #1..#n, not a running count
        self.heartbeat.add(len(result.faces))
        self.frames_with_faces += len(result.faces) > 0
        now = time.perf_counter()
        if self._t_prev is not None:
            inst = 1.0 / max(now - self._t_prev, 1e-6)
            self.saved.fps = inst if self.saved.fps is None else 0.9 * self.saved.fps + 0.1 * inst
        self._t_prev = now
        self.where = _where(self.spec, result.frame)
        for sink in self.sinks:
            sink.write(result)
        if self.win is not None and self._show(result):
            return True
        if self.on_frame is not None:
            self.on_frame(result)
        return False

    def _show(self, result: FrameResult) -> bool:
        from edge.outputs.overlay import draw
        from edge.outputs.window import WINDOW, enlarged_still, still_hint

        frame = result.frame
        hint = still_hint(self.spec.paths, frame.source) if self.spec.images else None
        if hint is None and self.hud_window == self.saved.hud:
            shown = self.saved(result)  # the frame the saving sinks write, drawn once
        else:
            if hint is not None:  # a small photo is drawn enlarged: room for its labels and the hint
                result = enlarged_still(result)
            shown = draw(result.frame.image, result, self.saved.fps, hud=self.hud_window, bars=self.config.bars,
                         hint=hint)
        if hint:
            self.win.title(f"{WINDOW}: {Path(frame.source).name} ({hint})")
        return self.win.show(shown, still=self.spec.images)

    def close(self) -> OSError | None:
        """Close every output and the window. Returns the first output that failed to close (a
        full disk at the video's last packets), if any."""
        failed: OSError | None = None
        for sink in self.sinks:
            try:
                sink.close()
            except OSError as exc:
                failed = failed or exc
        if self.win is not None:
            self.win.close()
        return failed


def run(config: RunConfig, stop: threading.Event | None = None, *, summary: RunSummary | None = None,
        on_frame: Callable[[FrameResult], None] | None = None, spec: SourceSpec | None = None,
        pipeline: Pipeline | None = None, quiet: bool = False) -> int:
    """The `fer-edge run` loop. Returns the exit code; raises CliError for user errors.

    `summary`: a RunSummary to fill (read it after the run); `on_frame(result)` is called after
    each frame's outputs are written (`fer-edge bench soak` samples memory there). For a caller
    that runs many sources (`fer-edge batch`): `spec`, the source already parsed (told apart by
    content) instead of config.source; `pipeline`, an open Pipeline to use and leave open (its
    models loaded once); `quiet`, no summary or hint on stderr.
    """
    from edge.capture.source import SourceError, parse_source
    from edge.capture.thread import Capture
    from edge.loop import FrameLoop, RunSummary
    from edge.cli.pipeline_flags import open_pipeline
    from edge.outputs.paths import check_output_paths, stopped_message
    from edge.outputs.remote_cli import check_remote

    try:
        spec = spec if spec is not None else parse_source(config.source)
    except SourceError as exc:
        raise CliError(str(exc)) from None
    _check_display(config, spec)
    _check_window_support(config)
    if config.max_fps < 0 or config.stats_interval_s < 0:
        raise CliError("--max-fps and --stats-interval-s must be >= 0")
    if config.fast and config.realtime:
        raise CliError("--fast and --realtime contradict each other: choose one")
    report_config = _check_report(config)
    check_output_paths(config)
    if config.save_video and Path(config.save_video).suffix.lower() == ".avi":
        log.info("%s: web browsers do not play AVI (it is kept, as Motion JPEG); name it .mp4 (H.264) or "
                 ".webm (VP9) for a video a browser plays", config.save_video)
    check_remote(config.mqtt, config.metrics_port)
    stop = stop or threading.Event()
    # A video in a window plays at its own speed, as a player would; headless runs process
    # every frame as fast as they can.
    realtime = config.realtime or (not config.headless and spec.kind == "video" and not config.fast)
    if realtime and not config.headless and not config.realtime:
        log.info("playing %s at its own frame rate; --fast processes it as fast as possible", config.source)
    session = _Run(config, spec, stop, summary if summary is not None else RunSummary(), on_frame)
    if spec.images:  # photos: counted as images; stepped through by key in a window, at no rate
        session.summary.unit, session.summary.show_rate = "images", config.headless
    own_pipeline = pipeline is None
    if own_pipeline:
        pipeline = open_pipeline(config.pipeline)
    capture = Capture.from_spec(spec, width=config.width, height=config.height, fps=config.fps, realtime=realtime)
    error: CliError | None = None
    try:
        session.open_outputs(pipeline, capture)
        # Unrelated stills: no remembered faces, tracks or smoothing across them.
        fresh = (lambda _frame: True) if spec.images else None
        with StopOnSignals(stop), capture, FrameLoop(pipeline, capture, stop, max_fps=config.max_fps, fresh=fresh,
                                                     summary=session.summary) as loop:
            error = session.loop(loop, capture)
    except OSError as exc:  # an output that cannot be written (full disk, no permission): its reason, no traceback
        error = CliError(stopped_message(exc, session.where, session.sinks), exit_code=1)
    finally:
        failed = session.close()
        if failed is not None and error is None:
            error = CliError(stopped_message(failed, "its end", session.sinks), exit_code=1)
        if own_pipeline:
            pipeline.close()
        # A source that never delivered ends with its error alone.
        if not quiet and (error is None or session.summary.frames):
            print(session.summary.text(), file=sys.stderr, flush=True)
    if report_config is not None:
        _write_run_report(config, report_config, error)
    if error is not None:
        raise error
    hint = None if quiet else no_face_hint(session.summary.frames, session.frames_with_faces, config)
    if hint:
        print(hint, file=sys.stderr, flush=True)
    return 0


def _check_report(config: RunConfig):
    """The ReportConfig for --report, checked before the run starts (None without --report)."""
    if not config.report:
        return None
    from edge.report.types import ReportConfig
    from edge.report.cli import check_chart

    if config.jsonl == "-":
        raise CliError("--report reads the run's JSONL back: give --jsonl a file name, not -")
    report_config = ReportConfig()
    check_chart(report_config)
    return report_config


def _write_run_report(config: RunConfig, report_config, error: CliError | None) -> None:
    from edge.report.cli import write_report

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
    det = config.pipeline.detector
    if not det.tiled and det.backend == "blazeface":
        tips.append(f"--scan auto --range short, when faces are small or far away (one whole-frame pass "
                    f"finds only faces wider than about a quarter of the frame; the default scan finds faces "
                    f"down to --min-face-px, now {det.min_face_px:g} px)")
    elif det.tiled:
        tips.append(f"--min-face-px {max(24, int(det.min_face_px * 0.75))} (now {det.min_face_px:g}), when faces "
                    "are smaller still, at a higher cost per frame")
    if det.threshold > 0.5:  # the threshold this scan used: the flag, or the scan's default
        tips.append(f"--score-threshold 0.5 (now {det.threshold:g}) finds fainter faces, "
                    "at the cost of more false ones")
    tips.append("a closer, frontal, evenly lit view of the faces")
    share = 100.0 * frames_with_faces / frames
    return (f"hint: faces were found in {frames_with_faces} of {frames} frames ({share:.1f} %). If there are "
            "people in view, try:\n" + "\n".join(f"  - {t}" for t in tips))


def _where(spec, frame) -> str:
    """The frame in words: "frame 35", or "image 3 of 213 (IMG_0042.jpg)" for photos."""
    if spec.images and frame.source:
        n = len(spec.paths)
        k = spec.paths.index(frame.source) + 1 if frame.source in spec.paths else frame.index + 1
        return f"image {k} of {n} ({Path(frame.source).name})"
    return f"frame {frame.index}"

"""The pipeline's command-line flags, declared once for every command that builds a Pipeline.

    add_pipeline_args(parser)                 # --detector ... --max-age-s, defaults from PipelineConfig
    config = config_from_args(args)           # -> PipelineConfig (CliError for impossible values)
    with open_pipeline(config) as pipeline:   # model errors -> CliError with what to do
        ...

`fer-edge run`, `serve` and the benchmarks (`bench`, `bench soak`, `bench photos`, `scenes`,
`calibrate`, `crowd`, `threshold`) take these flags, or the groups of them that apply: a
benchmark that sweeps the score threshold does not offer `--score-threshold`.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict, fields
from pathlib import Path

from edge.classify.classifier import TTA
from edge.cli import CliError
from edge.detect.factory import BACKENDS, RANGES, SCANS, DetectorConfig
from edge.detect.frame import DEFAULT_SCORE_THRESHOLD
from edge.detect.motion import CARRY_MIN_PX, CONFIDENT_SCORE, THUMB_DIV
from edge.detect.tiling import TILES_SCORE_THRESHOLD
from edge.pipeline import Pipeline, PipelineConfig
from edge.track.tracker import TrackerConfig

GROUPS = ("detector", "model", "runtime", "tracking")


def add_pipeline_args(parser, groups: tuple[str, ...] = GROUPS, skip: tuple[str, ...] = ()) -> None:
    """Add the pipeline's flags of `groups` to a parser or argument group, except the flags in `skip`.

    detector: --detector --range --detector-model --score-threshold --scan --min-face-px
    --tiles-per-frame --carry-frames; model: --model --tta; runtime: --threads --workers; tracking: --no-smooth
    --ema-alpha --max-missed --max-age-s. Defaults are those of PipelineConfig, DetectorConfig and TrackerConfig.
    """
    unknown = set(groups) - set(GROUPS)
    if unknown:
        raise ValueError(f"unknown flag groups {sorted(unknown)}; known: {', '.join(GROUPS)}")
    p, d, t = PipelineConfig(), DetectorConfig(), TrackerConfig()

    def add(group: str, *flags: str, **kwargs) -> None:
        if group in groups and flags[0] not in skip:
            parser.add_argument(*flags, **kwargs)

    add("detector", "--detector", choices=BACKENDS, default=d.backend,
        help="face detector backend: blazeface (LiteRT) or mediapipe (MediaPipe Tasks)")
    add("detector", "--range", choices=RANGES, default=d.range,
        help="detector model: short (faces within ~2 m) or full (up to ~5 m)")
    add("detector", "--detector-model", default=d.model_path,
        help="detector .tflite (default: $FER_EDGE_MODEL_DIR, then ~/.cache/fer-edge/models; "
        "`fer-edge models pull` downloads it)")
    add("detector", "--score-threshold", type=float, default=d.score_threshold,
        help="detector confidence below which a face is dropped; lower finds fainter faces and more false ones "
        f"(default: {DEFAULT_SCORE_THRESHOLD:g} in a whole-frame pass, read off the curve `fer-edge bench "
        f"threshold` measures; {TILES_SCORE_THRESHOLD:g} in tiles, where a new face must also be confirmed in two "
        "zoomed windows)")
    add("detector", "--scan", choices=SCANS, default=d.scan,
        help="frame: the whole frame in one detector pass, faces from about 1/4 of the frame's long side (160 px "
        "at 640x480); tiles: short range over the whole frame, a pyramid of windows and windows around known "
        "faces, faces from --min-face-px at every frame size, a new face kept when sure or confirmed by a second, "
        "zoomed look; auto: tiles with the short-range blazeface detector, frame otherwise")
    add("detector", "--min-face-px", type=float, default=d.min_face_px,
        help="smallest face side the default scan looks for, in frame pixels; smaller faces are found less often "
        "(recall per face size: README *Group scenes*)")
    add("detector", "--tiles-per-frame", type=int, default=d.tiles_per_frame,
        help="tiled streams: tiles scanned per frame besides the regions around known faces, where the frame "
        "changed first, then the longest waiting; more finds new faces sooner at a higher cost per frame")
    add("detector", "--carry-frames", type=int, default=d.carry_frames,
        help=f"frames in a row a sure face (score >= {CONFIDENT_SCORE:g}, >= {CARRY_MIN_PX} px) keeps its detection "
        f"instead of running the detector again while the frame around it stands still (its {THUMB_DIV}x smaller "
        "gray thumbnail unchanged); when the whole frame is carried its faces keep their last classification "
        "too; 0 runs the detector and the classifier on every frame")
    add("model", "--model", "--emotion-model", dest="emotion_model", default=p.emotion_model,
        help="emotion .tflite with its .json sidecar (default: the shipped models/emotion_int8.tflite)")
    add("model", "--tta", choices=TTA, default=p.tta,
        help="flip: also classify each face's mirror image and average the two (more accurate, README *Results*; "
        "the classifier's time per face doubles; a model that averages the mirror in its graph needs none)")
    add("runtime", "--threads", type=int, default=p.threads,
        help="interpreter threads per model (default: 1, fastest for these small models on 2 cores, and up to "
        "2 for the tiled detector of large frames; try 2-4 on a Pi)")
    add("runtime", "--workers", type=int, choices=(1, 2), default=p.workers,
        help="frame-loop threads: 2 detects the next frame while this one is classified, drawn and written "
        "(more frames/s); 1 runs every stage on one thread (lower latency) (default: 2)")
    add("tracking", "--no-smooth", action="store_true",
        help="raw per-frame labels (no EMA of probabilities, no label hysteresis)")
    add("tracking", "--ema-alpha", type=float, default=t.ema_alpha, help="weight of the newest frame in the smoothing")
    add("tracking", "--max-missed", type=int, default=t.max_missed,
        help="frames a face track survives without a detection...")
    add("tracking", "--max-age-s", type=float, default=t.max_age_s,
        help="...or seconds, whichever is longer: a face missed this briefly keeps its id")


# The setting each flag's dest sets, where the two names differ; the others are named alike, and
# PipelineConfig.replace finds each setting's home.
_RENAMED = {"detector": "backend", "detector_model": "model_path"}
_SETTINGS = frozenset(f.name for cls in (PipelineConfig, DetectorConfig, TrackerConfig) for f in fields(cls))


def flag_settings(config: PipelineConfig) -> dict:
    """Every setting of `config` in one flat dict, named as the flags' dests name them (what the
    benchmark reports record: "detector" is the backend, "detector_model" its file)."""
    flags = {setting: dest for dest, setting in _RENAMED.items()}
    own = {k: v for k, v in asdict(config).items() if k not in ("detector", "tracker")}
    merged = {**asdict(config.detector), **asdict(config.tracker), **own}
    return {flags.get(name, name): value for name, value in merged.items()}


def config_from_args(args: argparse.Namespace, **overrides) -> PipelineConfig:
    """The PipelineConfig of the flags `add_pipeline_args` added (the others keep their defaults),
    then `overrides` (by setting name, as PipelineConfig.replace). CliError for values no pipeline
    can run with."""
    values = {_RENAMED.get(name, name): value for name, value in vars(args).items()
              if _RENAMED.get(name, name) in _SETTINGS - {"detector", "tracker"}}
    if hasattr(args, "no_smooth"):
        values["smooth"] = not args.no_smooth
    try:
        config = PipelineConfig().replace(**{**values, **overrides})
    except ValueError as exc:  # TrackerConfig checks its values
        raise CliError(f"impossible tracking setting: {exc}") from None
    detector = config.detector
    if config.threads is not None and config.threads < 1:
        raise CliError("--threads must be >= 1")
    if detector.tiles_per_frame < 1 or detector.min_face_px <= 0 or detector.carry_frames < 0:
        raise CliError("--tiles-per-frame must be >= 1, --min-face-px > 0 and --carry-frames >= 0")
    return config


def open_pipeline(config: PipelineConfig) -> Pipeline:
    """Pipeline.from_config, with every way it can fail as a CliError that says what to do."""
    from edge.models.registry import ModelNotFoundError, resolve_detector_model
    from edge.classify.sidecar import SidecarError

    if config.emotion_model is not None and not Path(config.emotion_model).is_file():
        raise CliError(f"emotion model not found: {config.emotion_model} (--model expects a .tflite with its .json "
                       "sidecar beside it; leave it out to use the shipped models/emotion_int8.tflite)")
    if config.detector.backend == "mediapipe":
        from edge.cli import require

        require("mediapipe", "mediapipe")
    try:
        if config.detector.backend == "blazeface":
            resolve_detector_model(config.detector.range, config.detector.model_path)  # names every way to supply it
        return Pipeline.from_config(config)
    except ModelNotFoundError as exc:
        raise CliError(str(exc)) from None
    except SidecarError as exc:
        raise CliError(f"model sidecar does not fit: {exc}") from None
    except (ValueError, OSError) as exc:
        raise CliError(f"cannot load the models: {exc}") from None

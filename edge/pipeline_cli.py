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
from dataclasses import fields, replace
from pathlib import Path

from edge.classifier import TTA
from edge.cli import CliError
from edge.detector import BACKENDS, DEFAULT_SCORE_THRESHOLD, RANGES, SCANS
from edge.motion import CARRY_MIN_PX, CONFIDENT_SCORE, THUMB_DIV
from edge.tiling import TILES_SCORE_THRESHOLD
from edge.pipeline import Pipeline, PipelineConfig

GROUPS = ("detector", "model", "runtime", "tracking")


def add_pipeline_args(parser, groups: tuple[str, ...] = GROUPS, skip: tuple[str, ...] = ()) -> None:
    """Add the pipeline's flags of `groups` to a parser or argument group, except the flags in `skip`.

    detector: --detector --range --detector-model --score-threshold --scan --min-face-px
    --tiles-per-frame --carry-frames; model: --model --tta; runtime: --threads --workers; tracking: --no-smooth
    --ema-alpha --max-missed --max-age-s. Defaults are PipelineConfig's.
    """
    unknown = set(groups) - set(GROUPS)
    if unknown:
        raise ValueError(f"unknown flag groups {sorted(unknown)}; known: {', '.join(GROUPS)}")
    d = PipelineConfig()

    def add(group: str, *flags: str, **kwargs) -> None:
        if group in groups and flags[0] not in skip:
            parser.add_argument(*flags, **kwargs)

    add("detector", "--detector", choices=BACKENDS, default=d.detector,
        help="face detector backend: blazeface (LiteRT) or mediapipe (MediaPipe Tasks)")
    add("detector", "--range", choices=RANGES, default=d.range,
        help="detector model: short (faces within ~2 m) or full (up to ~5 m)")
    add("detector", "--detector-model", default=d.detector_model,
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
        "gray thumbnail unchanged); 0 runs the detector on every frame")
    add("model", "--model", "--emotion-model", dest="emotion_model", default=d.emotion_model,
        help="emotion .tflite with its .json sidecar (default: the shipped models/emotion_int8.tflite)")
    add("model", "--tta", choices=TTA, default=d.tta,
        help="flip: also classify each face's mirror image and average the two (PrivateTest 70.2 %% against 68.7 %% "
        "with the shipped model; the classifier's time per face doubles, about 0.5 ms more)")
    add("runtime", "--threads", type=int, default=d.threads,
        help="interpreter threads per model (default: 1, fastest for these small models on 2 cores, and up to "
        "2 for the tiled detector of large frames; try 2-4 on a Pi)")
    add("runtime", "--workers", type=int, choices=(1, 2), default=d.workers,
        help="frame-loop threads: 2 detects the next frame while this one is classified, drawn and written "
        "(more frames/s); 1 runs every stage on one thread (lower latency) (default: 2)")
    add("tracking", "--no-smooth", action="store_true",
        help="raw per-frame labels (no EMA of probabilities, no label hysteresis)")
    add("tracking", "--ema-alpha", type=float, default=d.ema_alpha, help="weight of the newest frame in the smoothing")
    add("tracking", "--max-missed", type=int, default=d.max_missed,
        help="frames a face track survives without a detection...")
    add("tracking", "--max-age-s", type=float, default=d.max_age_s,
        help="...or seconds, whichever is longer: a face missed this briefly keeps its id")


_FIELDS = frozenset(f.name for f in fields(PipelineConfig))


def config_from_args(args: argparse.Namespace, **overrides) -> PipelineConfig:
    """The PipelineConfig of the flags `add_pipeline_args` added (the others keep their defaults),
    then `overrides`. CliError for values no pipeline can run with."""
    values = {name: getattr(args, name) for name in _FIELDS if hasattr(args, name)}
    if hasattr(args, "no_smooth"):
        values["smooth"] = not args.no_smooth
    config = replace(PipelineConfig(**values), **overrides)
    if config.threads is not None and config.threads < 1:
        raise CliError("--threads must be >= 1")
    if config.tiles_per_frame < 1 or config.min_face_px <= 0 or config.carry_frames < 0:
        raise CliError("--tiles-per-frame must be >= 1, --min-face-px > 0 and --carry-frames >= 0")
    return config


def open_pipeline(config: PipelineConfig) -> Pipeline:
    """Pipeline.from_config, with every way it can fail as a CliError that says what to do."""
    from edge.models import ModelNotFoundError, resolve_detector_model
    from edge.sidecar import SidecarError

    if config.emotion_model is not None and not Path(config.emotion_model).is_file():
        raise CliError(f"emotion model not found: {config.emotion_model} (--model expects a .tflite with its .json "
                       "sidecar beside it; leave it out to use the shipped models/emotion_int8.tflite)")
    if config.detector == "mediapipe":
        from edge.cli import require

        require("mediapipe", "mediapipe")
    try:
        if config.detector == "blazeface":
            resolve_detector_model(config.range, config.detector_model)  # names every way to supply it
        return Pipeline.from_config(config)
    except ModelNotFoundError as exc:
        raise CliError(str(exc)) from None
    except SidecarError as exc:
        raise CliError(f"model sidecar does not fit: {exc}") from None
    except (ValueError, OSError) as exc:
        raise CliError(f"cannot load the models: {exc}") from None

"""edge.cli.pipeline_flags: the pipeline's flags, declared once, parsed into one PipelineConfig."""

from __future__ import annotations

import argparse

import pytest

from edge.cli import CliError, HelpFormatter, build_parser
from edge.detect.factory import DetectorConfig
from edge.pipeline import PipelineConfig
from edge.cli.pipeline_flags import GROUPS, add_pipeline_args, config_from_args, flag_settings, open_pipeline
from edge.track.tracker import TrackerConfig


def _parser(**kwargs) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(formatter_class=HelpFormatter)
    add_pipeline_args(p, **kwargs)
    return p


def test_no_flags_give_the_default_config():
    assert config_from_args(_parser().parse_args([])) == PipelineConfig()


def test_every_flag_lands_in_its_field():
    args = _parser().parse_args([
        "--detector", "blazeface", "--range", "full", "--detector-model", "d.tflite", "--score-threshold", "0.5",
        "--scan", "frame", "--min-face-px", "32", "--tiles-per-frame", "2", "--carry-frames", "0", "--model", "m.tflite",
        "--threads", "3", "--workers", "1", "--no-smooth", "--ema-alpha", "0.2", "--max-missed", "4",
        "--max-age-s", "1.5", "--tta", "flip"])
    assert config_from_args(args) == PipelineConfig(
        detector=DetectorConfig(range="full", model_path="d.tflite", score_threshold=0.5, scan="frame", min_face_px=32.0,
                                tiles_per_frame=2, carry_frames=0),
        tracker=TrackerConfig(smooth=False, ema_alpha=0.2, max_missed=4, max_age_s=1.5),
        emotion_model="m.tflite", threads=3, workers=1, tta="flip")
    assert config_from_args(_parser().parse_args(["--emotion-model", "x.tflite"])).emotion_model == "x.tflite"


def test_flag_settings_name_every_setting_as_its_flag_does():
    args = _parser().parse_args(["--detector", "mediapipe", "--detector-model", "d.tflite", "--max-missed", "4",
                                 "--no-smooth"])
    settings = flag_settings(config_from_args(args))
    assert {name: value for name, value in vars(args).items() if name in settings} == \
        {name: value for name, value in vars(args).items() if name != "no_smooth"}
    assert (settings["detector"], settings["detector_model"], settings["smooth"]) == ("mediapipe", "d.tflite", False)


def test_groups_and_skip_choose_the_flags():
    p = _parser(groups=("detector",), skip=("--score-threshold",))
    flags = {s for a in p._actions for s in a.option_strings}
    assert "--scan" in flags and "--score-threshold" not in flags and "--model" not in flags
    assert config_from_args(p.parse_args(["--scan", "tiles"]), smooth=False) == PipelineConfig().replace(scan="tiles", smooth=False)
    with pytest.raises(ValueError, match="unknown flag groups"):
        _parser(groups=("detectors",))
    assert set(GROUPS) == {"detector", "model", "runtime", "tracking"}


@pytest.mark.parametrize("argv, words", [(["--threads", "0"], "--threads must be >= 1"),
                                         (["--tiles-per-frame", "0"], "--tiles-per-frame"),
                                         (["--carry-frames", "-1"], "--carry-frames >= 0")])
def test_impossible_values_are_cli_errors(argv, words):
    with pytest.raises(CliError, match=words):
        config_from_args(_parser().parse_args(argv))


def test_every_command_that_builds_a_pipeline_takes_the_same_detector_flag():
    parser = build_parser()
    for argv in (["run"], ["serve"], ["bench", "--source", "v.mp4"], ["bench", "soak"], ["bench", "photos", "f"],
                 ["bench", "scenes"], ["bench", "calibrate"], ["bench", "threshold"]):
        args = parser.parse_args(argv + ["--detector-model", "here.tflite"])
        assert config_from_args(args).detector.model_path == "here.tflite", argv


def test_a_missing_emotion_model_is_a_cli_error_that_says_what_to_pass(tmp_path):
    with pytest.raises(CliError, match="emotion model not found.*--model expects a .tflite"):
        open_pipeline(PipelineConfig(emotion_model=str(tmp_path / "none.tflite")))

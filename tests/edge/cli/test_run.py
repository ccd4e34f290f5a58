"""`fer-edge run`: bad input -> clear errors and exit codes; signals; JSONL, video and image outputs."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.cli import build_parser
from edge.cli import main as cli_main
from edge.pipeline import PipelineConfig
from edge.cli.run import RunConfig
from edge_runtime_helpers import fer_faces, scene_video, signal_after_lines

REPO = Path(__file__).resolve().parents[3]
RECORD_KEYS = {"v", "frame", "t", "faces", "latency_ms"}


@pytest.fixture(scope="module")
def video(tmp_path_factory, faces_dir):
    path = tmp_path_factory.mktemp("video") / "scene.mp4"
    truth, _ = scene_video(path, faces_dir, n_frames=12, size=(320, 240), face_px=(90, 120), seed=4)
    return path.parent / truth.video


def fer_edge_cmd() -> list[str]:
    exe = shutil.which("fer-edge")
    return [exe] if exe else [sys.executable, "-m", "edge"]


def _bad_sidecar(tmp_path: Path, emotion_model: Path, edit) -> Path:
    model = tmp_path / "bad.tflite"
    shutil.copy(emotion_model, model)
    card = json.loads(emotion_model.with_suffix(".json").read_text())
    edit(card)
    model.with_suffix(".json").write_text(json.dumps(card))
    return model


def _drop(key):
    return lambda card: card.pop(key)


BAD_INPUTS = {
    "missing file": (lambda t, v, m: ["--source", str(t / "nope.mp4")], "file not found: "),
    "not a video": (lambda t, v, m: ["--source", str(_garbage(t))], "cannot open"),
    "no camera": (lambda t, v, m: ["--source", "7"], "--source FILE"),
    "missing emotion model": (lambda t, v, m: ["--source", str(v), "--model", str(t / "none.tflite")], "--model"),
    "missing detector model": (lambda t, v, m: ["--source", str(v), "--detector-model", str(t / "bf.tflite")],
                               "--detector-model"),
    "sidecar labels mismatch": (lambda t, v, m: ["--source", str(v), "--model", str(_bad_sidecar(
        t, m, lambda c: c.update(labels=c["labels"][:6])))], "field 'labels'"),
    "sidecar input mismatch": (lambda t, v, m: ["--source", str(v), "--model", str(_bad_sidecar(
        t, m, lambda c: c["input"].update(height=64)))], "field 'input'"),
    "sidecar missing field": (lambda t, v, m: ["--source", str(v), "--model", str(_bad_sidecar(
        t, m, _drop("normalization")))], "'normalization'"),
    "bad max fps": (lambda t, v, m: ["--source", str(v), "--max-fps", "-1"], "--max-fps"),
}


def _garbage(tmp_path: Path) -> Path:
    p = tmp_path / "broken.mp4"
    p.write_bytes(b"\x00not a video\x00" * 100)
    return p


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_gives_a_clear_error_and_exit_code_2(case, tmp_path, video, emotion_model, detector_dir, capsys):
    make_args, words = BAD_INPUTS[case]
    rc = cli_main(["run", "--headless", *make_args(tmp_path, video, emotion_model)])
    err = capsys.readouterr().err
    assert rc == 2
    assert "fer-edge run: error:" in err and words in err, err
    assert "Traceback" not in err


@pytest.mark.parametrize("name", ["out", "out.xyz", "out.flv"])
def test_save_video_without_a_usable_extension_is_refused_before_any_work(name, tmp_path, video, capsys):
    jsonl = tmp_path / "r.jsonl"
    rc = cli_main(["run", "--headless", "--source", str(video), "--jsonl", str(jsonl),
                   "--save-video", str(tmp_path / name)])
    err = capsys.readouterr().err
    assert rc == 2 and "cannot write a video with this name" in err and ".mp4" in err and ".avi" in err, err
    assert "Traceback" not in err and "frames " not in err  # no frame was processed, no summary
    assert not jsonl.exists() and not (tmp_path / name).exists()


def test_a_file_that_is_not_a_video_ends_with_its_error(tmp_path, detector_dir, capsys):
    rc = cli_main(["run", "--headless", "--source", str(_garbage(tmp_path))])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "frames 0" not in err, err
    assert err.splitlines()[-1].startswith("fer-edge run: error:") and "cannot open" in err


def test_an_output_that_cannot_be_written_is_a_clear_error(tmp_path, video, detector_dir, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    rc = cli_main(["run", "--headless", "--source", str(video), "--jsonl", str(tmp_path / "r.jsonl"),
                   "--save-video", str(blocker / "out.mp4")])
    err = capsys.readouterr().err
    assert rc == 2 and "fer-edge run: error:" in err and "a-file" in err and "Traceback" not in err, err


def test_missing_detector_model_says_how_to_get_it(tmp_path, video, monkeypatch, capsys):
    monkeypatch.setenv("FER_EDGE_MODEL_DIR", str(tmp_path))  # holds no model
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert cli_main(["run", "--headless", "--source", str(video)]) == 2
    err = capsys.readouterr().err
    assert "fer-edge models pull" in err and "--detector-model" in err


def test_no_display_without_headless_is_a_clear_error(video, monkeypatch, capsys):
    if not sys.platform.startswith("linux"):
        pytest.skip("the $DISPLAY check is for Linux")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert cli_main(["run", "--source", str(video)]) == 2
    err = capsys.readouterr().err
    assert "no display" in err and "--headless" in err


def test_headless_writes_jsonl_to_stdout_and_the_summary_to_stderr(video, detector_dir, capsys):
    assert cli_main(["run", "--headless", "--source", str(video)]) == 0
    out, err = capsys.readouterr()
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["frame"] for r in records] == list(range(12))
    assert all(set(r) == RECORD_KEYS for r in records)
    assert sum(len(r["faces"]) for r in records) > 0
    assert "frames 12" in err and "p50" in err and "p95" in err and "drops 0" in err


def test_image_folder_writes_annotated_images_and_jsonl_to_out_dir(tmp_path, faces_dir, detector_dir, capsys):
    from benchmarks.scenes.synthetic import make_scene_image

    faces, labels = fer_faces(faces_dir, per_class=2)
    src = tmp_path / "photos"
    src.mkdir()
    for k in range(3):
        image, _ = make_scene_image(faces, labels, size=(320, 240), faces_per_frame=1, face_px=(90, 120), seed=k)
        cv2.imwrite(str(src / f"img{k}.jpg"), image)
    (src / "img9.jpg").write_bytes(b"corrupt")
    out = tmp_path / "annotated"
    assert cli_main(["run", "--headless", "--source", str(src), "--out-dir", str(out)]) == 0
    err = capsys.readouterr().err
    assert sorted(p.name for p in out.glob("*.jpg")) == ["img0.jpg", "img1.jpg", "img2.jpg"]
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert [Path(r["source"]).name for r in records] == ["img0.jpg", "img1.jpg", "img2.jpg"]
    assert all(set(r) == RECORD_KEYS | {"source"} for r in records)
    assert "skipped 1" in err
    assert cv2.imread(str(out / "img0.jpg")).shape == (240, 320, 3)


def test_save_video_writes_every_annotated_frame(tmp_path, video, detector_dir, capsys):
    out = tmp_path / "annotated.avi"
    jsonl = tmp_path / "r.jsonl"
    assert cli_main(["run", "--headless", "--source", str(video), "--save-video", str(out),
                     "--jsonl", str(jsonl)]) == 0
    cap = cv2.VideoCapture(str(out))
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    assert n == 12 and len(jsonl.read_text().splitlines()) == 12
    assert capsys.readouterr().out == ""  # with --jsonl, stdout stays clean


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_ends_the_run_cleanly_with_complete_jsonl(sig, tmp_path, faces_dir, detector_dir):
    path = tmp_path / "long.mp4"
    truth, _ = scene_video(path, faces_dir, n_frames=150, size=(320, 240), face_px=(90, 120), seed=4)
    out = tmp_path / "out.jsonl"
    env = {**os.environ, "FER_EDGE_MODEL_DIR": str(detector_dir)}
    proc = subprocess.Popen([*fer_edge_cmd(), "run", "--source", str(path.parent / truth.video), "--headless",
                             "--jsonl", str(out), "--max-fps", "5"], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stdout, stderr = signal_after_lines(proc, out, sig, timeout_s=30)
    assert proc.returncode == 0, stderr[-2000:]
    lines = out.read_text().splitlines()
    records = [json.loads(line) for line in lines]  # every line is whole, valid JSON
    assert 5 <= len(records) < 150, "the run should have been stopped mid-video"
    assert [r["frame"] for r in records] == list(range(len(records)))
    assert all(set(r) == RECORD_KEYS for r in records)
    assert f"frames {len(records)} " in stderr and "p95" in stderr
    assert stdout == ""


def test_help_shows_defaults_and_flags_parse_into_run_config():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    help_text = sub.choices["run"].format_help()
    for words in ("--source", "(default: 0)", "--detector {blazeface,mediapipe}", "(default: blazeface)",
                  "--no-smooth", "--max-missed", "--save-video", "--out-dir", "--realtime", "--threads"):
        assert words in help_text
    args = parser.parse_args(["run", "--source", "v.mp4", "--no-smooth", "--max-fps", "5", "--threads", "4",
                              "--range", "full", "--max-missed", "3"])
    cfg = RunConfig.from_args(args)
    assert cfg == RunConfig(source="v.mp4", max_fps=5.0,
                            pipeline=PipelineConfig().replace(smooth=False, threads=4, range="full", max_missed=3))


# ------------------------------------------------------------------ console, hints, HUD defaults


def _face_free_video(path: Path, n_frames: int = 20, size=(320, 240)) -> Path:
    from benchmarks.scenes.synthetic import make_background

    rng = np.random.default_rng(1)
    base = make_background("room", size, rng)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, size)
    for _ in range(n_frames):
        writer.write(np.clip(base + rng.normal(0, 2, base.shape), 0, 255).astype(np.uint8))
    writer.release()
    return path


def _litert_prints_on_fd2() -> str:
    """What the interpreter itself writes to stderr when it allocates, without our routing."""
    code = ("from edge.interpreter import interpreter_class\n"
            f"i = interpreter_class()(model_path={str(REPO / 'models' / 'emotion_int8.tflite')!r}, num_threads=1)\n"
            "i.allocate_tensors()\n")
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120).stderr


def test_the_console_carries_only_our_lines_at_the_chosen_level(video, detector_dir, tmp_path):
    env = {**os.environ, "FER_EDGE_MODEL_DIR": str(detector_dir)}
    cmd = [*fer_edge_cmd(), "run", "--source", str(video), "--headless", "--jsonl", str(tmp_path / "o.jsonl")]
    quiet = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert quiet.returncode == 0, quiet.stderr[-2000:]
    assert quiet.stdout == ""
    assert quiet.stderr.splitlines()[0].startswith("frames 12 ")  # the summary first: nothing before it
    assert "XNNPACK" not in quiet.stderr and "INFO:" not in quiet.stderr
    native = _litert_prints_on_fd2()
    debug = subprocess.run([*cmd, "--log-level", "debug"], cwd=REPO, env=env, capture_output=True, text=True,
                           timeout=300)
    assert debug.returncode == 0, debug.stderr[-2000:]
    assert "DEBUG edge.models.registry" in debug.stderr  # our own debug lines
    for line in native.splitlines():  # the interpreter's own words come through our logger
        assert f"DEBUG edge.interpreter: {line.strip()}" in debug.stderr
    errors_only = subprocess.run([*cmd, "--log-level", "error"], cwd=REPO, env=env, capture_output=True,
                                 text=True, timeout=300)
    assert "DEBUG" not in errors_only.stderr and "INFO" not in errors_only.stderr


def test_a_run_that_finds_almost_no_faces_says_what_to_try(tmp_path, detector_dir, capsys):
    empty = _face_free_video(tmp_path / "wall.avi")
    assert cli_main(["run", "--headless", "--source", str(empty), "--jsonl", str(tmp_path / "o.jsonl")]) == 0
    err = capsys.readouterr().err
    # The default scan already looks for small faces: smaller still, not another scan.
    assert "hint: faces were found in 0 of 20 frames" in err and "--min-face-px 30" in err and "--scan" not in err
    assert "--score-threshold" not in err  # the default scan keeps followed faces from 0.5 already
    assert cli_main(["run", "--headless", "--source", str(empty), "--scan", "frame",
                     "--jsonl", str(tmp_path / "o.jsonl")]) == 0
    err = capsys.readouterr().err
    assert "hint:" in err and "--scan auto" in err and "--score-threshold 0.5" in err  # only advice that applies


def test_no_face_hint_threshold():
    from edge.cli.run import no_face_hint

    cfg = RunConfig()
    assert no_face_hint(0, 0, cfg) is None
    assert no_face_hint(100, 5, cfg) is None  # 5 % of frames with a face: enough
    assert "4 of 100 frames" in no_face_hint(100, 4, cfg)


@pytest.mark.parametrize("settings, tip", [
    ({}, None),  # the default scan tiles: followed faces are kept from 0.5 already
    ({"scan": "tiles"}, None),
    ({"scan": "tiles", "score_threshold": 0.6}, "--score-threshold 0.5 (now 0.6)"),
    ({"scan": "frame"}, "--score-threshold 0.5 (now 0.65)"),
    ({"range": "full"}, "--score-threshold 0.5 (now 0.65)"),  # auto runs the whole frame at full range
    ({"backend": "mediapipe"}, "--score-threshold 0.5 (now 0.65)"),
    ({"scan": "frame", "score_threshold": 0.4}, None),
])
def test_the_no_face_hint_names_the_threshold_the_scan_used(settings, tip):
    from edge.cli.run import no_face_hint

    hint = no_face_hint(100, 0, RunConfig(pipeline=PipelineConfig().replace(**settings)))
    if tip is None:
        assert "--score-threshold" not in hint
    else:
        assert tip in hint


def test_a_run_with_faces_gives_no_hint(video, detector_dir, capsys):
    assert cli_main(["run", "--headless", "--source", str(video)]) == 0
    assert "hint:" not in capsys.readouterr().err


def _top_left_is_black(image: np.ndarray) -> bool:
    """The HUD strip: a black band along the top-left corner."""
    return float(image[2:12, 2:60].mean()) < 40


@pytest.mark.parametrize("hud_flag, expect_hud", [([], False), (["--hud"], True)])
def test_saved_images_and_videos_carry_the_hud_only_when_asked(hud_flag, expect_hud, tmp_path, video, faces_dir,
                                                                detector_dir, capsys):
    from benchmarks.scenes.synthetic import make_scene_image

    faces, labels = fer_faces(faces_dir, per_class=1)
    src = tmp_path / "photos"
    src.mkdir()
    image, _ = make_scene_image(faces, labels, size=(640, 480), faces_per_frame=1, face_px=(200, 240), seed=2,
                                background="gradient")
    image[:40, :200] = 200  # a light corner, so a HUD would show
    cv2.imwrite(str(src / "a.png"), image)
    out = tmp_path / "annotated"
    assert cli_main(["run", "--headless", "--source", str(src), "--out-dir", str(out), *hud_flag]) == 0
    assert _top_left_is_black(cv2.imread(str(out / "a.jpg"))) == expect_hud
    saved = tmp_path / "annotated.avi"
    assert cli_main(["run", "--headless", "--source", str(video), "--save-video", str(saved),
                     "--jsonl", str(tmp_path / "r.jsonl"), *hud_flag]) == 0
    cap = cv2.VideoCapture(str(saved))
    ok, first = cap.read()
    cap.release()
    assert ok and _top_left_is_black(first) == expect_hud
    capsys.readouterr()


def test_output_flags_parse_into_run_config():
    parser = build_parser()
    cfg = RunConfig.from_args(parser.parse_args(["run", "--no-hud", "--no-bars", "--fast"]))
    assert (cfg.hud, cfg.bars, cfg.fast, cfg.realtime) == (False, False, True, False)
    cfg = RunConfig.from_args(parser.parse_args(["run"]))
    assert (cfg.hud, cfg.bars, cfg.fast) == (None, True, False)
    assert cli_main(["run", "--fast", "--realtime", "--headless", "--source", "0"]) == 2


def _cut_in_half(src: Path, dst: Path) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[: len(data) // 2])
    return dst


@pytest.fixture(scope="module")
def truncated_videos(tmp_path_factory, faces_dir) -> dict[str, Path]:
    """Real 71-frame videos cut at half their bytes: an MJPG AVI (OpenCV's writer) and an H.264
    MP4 with its index up front (as --save-video writes it), each as a copy cut short would be."""
    from edge.outputs.sinks import VideoSink

    folder = tmp_path_factory.mktemp("cut")
    truth, _ = scene_video(folder / "whole.avi", faces_dir, n_frames=71, size=(320, 240), face_px=(90, 120), seed=3)
    whole = folder / truth.video
    cap = cv2.VideoCapture(str(whole))
    with VideoSink(folder / "whole.mp4", fps=15.0) as sink:
        while (grab := cap.read())[0]:
            sink.write_image(grab[1])
    cap.release()
    return {"avi": _cut_in_half(whole, folder / "half.avi"), "mp4": _cut_in_half(folder / "whole.mp4", folder / "half.mp4")}


@pytest.mark.parametrize("kind", ["avi", "mp4"])
def test_a_truncated_video_warns_with_the_frame_reached_and_library_noise_waits_for_debug(
        kind, truncated_videos, detector_dir, tmp_path):
    cut = truncated_videos[kind]
    env = {**os.environ, "FER_EDGE_MODEL_DIR": str(detector_dir)}
    for name in ("OPENCV_FFMPEG_LOGLEVEL", "OPENCV_LOG_LEVEL"):
        env.pop(name, None)
    cmd = [*fer_edge_cmd(), "run", "--source", str(cut), "--headless", "--jsonl", str(tmp_path / "o.jsonl")]
    res = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    lines = len((tmp_path / "o.jsonl").read_text().splitlines())
    assert 0 < lines < 71
    warning = [line for line in res.stderr.splitlines() if "WARNING edge.capture.readers" in line]
    assert len(warning) == 1, res.stderr
    reached = int(warning[0].split("the video ended at frame ")[1].split()[0])
    assert f"{cut}: the video ended at frame {reached} of the 71 its header announces" in warning[0]
    assert lines <= reached < 71  # frames that did not decode count as reached, not as processed
    # Nothing in FFmpeg's or OpenCV's words ("[mjpeg @ 0x...] overread 8", "[h264 @ ...]", "[ WARN:0@...]").
    assert not [line for line in res.stderr.splitlines() if line.startswith("[")], res.stderr
    debug = subprocess.run([*cmd, "--log-level", "debug"], cwd=REPO, env=env, capture_output=True, text=True,
                           timeout=300)
    assert debug.returncode == 0
    assert [line for line in debug.stderr.splitlines() if line.startswith("[")], "FFmpeg's lines show at debug"


def test_a_whole_video_gives_no_truncation_warning(video, detector_dir, capsys, caplog):
    assert cli_main(["run", "--headless", "--source", str(video)]) == 0
    assert "its header announces" not in capsys.readouterr().err + caplog.text


def test_a_missing_camera_says_so_in_our_words_only(detector_dir):
    res = subprocess.run([*fer_edge_cmd(), "run", "--source", "7", "--headless"], cwd=REPO, capture_output=True,
                         text=True, timeout=120, env={**os.environ, "FER_EDGE_MODEL_DIR": str(detector_dir)})
    assert res.returncode == 2
    assert res.stderr.strip().splitlines() == [
        "fer-edge run: error: no camera at index 7 (camera: cannot open camera 7). To run on a file instead: "
        "fer-edge run --source FILE (a video, an image, a folder or a glob of images)"]

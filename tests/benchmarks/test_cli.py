"""benchmarks/cli.py: `fer-edge bench` and its subcommands, run in-process through edge.cli.main."""

from __future__ import annotations

import json

import pytest

from benchmarks.scenes.synthetic import make_scene_video
from edge.cli import build_parser, main


@pytest.fixture(scope="module")
def video(face_crops, tmp_path_factory, detector_dir):
    """The video the runs read; they need the face detector, so they skip without one (detector_dir)."""
    crops, labels = face_crops
    folder = tmp_path_factory.mktemp("cli-video")
    truth = make_scene_video(folder / "v.mp4", crops, labels, n_frames=12, size=(320, 240), faces_per_frame=1,
                             face_px=(100, 130), seed=4)
    return folder / truth.video


def test_subcommands_registered():
    parser = build_parser()
    args = parser.parse_args(["bench", "classifier"])
    assert args.func.__name__ == "_cmd_classifier"
    for sub in ("soak", "all"):
        assert parser.parse_args(["bench", sub]).func.__name__ == f"_cmd_{sub}"
    assert parser.parse_args(["bench", "--source", "x.mp4"]).func.__name__ == "_cmd_pipeline"


def test_bench_writes_json_md_png(video, tmp_path, capsys):
    out = tmp_path / "r" / "bench.json"
    rc = main(["bench", "--source", str(video), "--frames", "15", "--warmup", "1", "--peer", "off",
               "--no-progress", "--json", str(out)])
    assert rc == 0
    data = json.loads(out.read_text())
    assert data["frames"] == 15 and {"p50", "p95"} <= set(data["latency_ms"])
    assert out.with_suffix(".md").is_file() and out.with_suffix(".png").read_bytes()[:4] == b"\x89PNG"
    assert "| detect |" in capsys.readouterr().out


def test_soak_subcommand(video, tmp_path):
    out = tmp_path / "soak.json"
    rc = main(["bench", "soak", "--source", str(video), "--frames", "20", "--warmup", "1", "--no-progress",
               "--json", str(out)])
    assert rc == 0
    assert "rss_growth_mb" in json.loads(out.read_text())


def test_classifier_subcommand(fer_dir, tmp_path, capsys):
    out = tmp_path / "classifier.json"
    rc = main(["bench", "classifier", "--data", str(fer_dir), "--limit", "16", "--iters", "2", "--threads", "1",
               "--peer", "off", "--no-progress", "--json", str(out)])
    assert rc == 0
    assert json.loads(out.read_text())["variants"][0]["quantization"] == "int8"
    assert "ms per face" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["bench"], "pass --source"),
    (["bench", "--source", "/nonexistent/video.mp4", "--peer", "off"], "no such video"),
    (["bench", "classifier", "--threads", "0"], "--threads"),
    (["bench", "classifier", "--models-dir", "/nonexistent"], "no such models folder"),
])
def test_user_errors_exit_2(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_bench_all_writes_results(fer_dir, tmp_path, capsys):
    out = tmp_path / "reports"
    rc = main(["bench", "all", "--out", str(out), "--data", str(fer_dir), "--frames", "6", "--classifier-iters", "2",
               "--limit", "40", "--peer", "off", "--scenes", "off", "--soak-frames", "12", "--no-progress"])
    assert rc == 0
    results = (out / "RESULTS.md").read_text()
    assert "| frames/s, 640x480 video, 1 face(s) placed" in results
    assert "| frames/s, 640x360 video, 2 face(s) placed" in results
    assert "RSS growth over 12 frames" in results and "PrivateTest (40 crops)" in results
    data = json.loads((out / "results.json").read_text())
    assert set(data["pipeline"]) == {"one_face_640x480", "two_faces_640x360"}
    for name in data["pipeline"]:
        assert (out / f"pipeline_{name}.png").read_bytes()[:4] == b"\x89PNG"

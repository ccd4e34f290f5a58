"""The headless heartbeat: an 'alive' line at an interval, with frames, faces, f/s, drops and RSS."""

from __future__ import annotations

import logging
import re

import psutil
import pytest

from edge.cli import build_parser
from edge.cli import main as cli_main
from edge.outputs.heartbeat import Heartbeat
from edge.cli.run import RunConfig
from edge_runtime_helpers import scene_video

ALIVE = re.compile(r"alive: frames (\d+)  faces (\d+)  ([\d.]+) frames/s  drops (\d+)  skipped (\d+)  "
                   r"reconnects (\d+)  rss ([\d.]+) MB")


def test_heartbeat_is_due_once_per_interval_and_reports_the_interval_rate():
    hb = Heartbeat(interval_s=10.0, start_s=100.0)
    for faces in (1, 0, 2):
        hb.add(faces)
    assert not hb.due(109.9)
    assert hb.due(110.0)
    v = hb.beat(110.0, drops=4, skipped=1, reconnects=2)
    assert (v.frames, v.faces, v.drops, v.skipped, v.reconnects) == (3, 3, 4, 1, 2)
    assert v.fps == pytest.approx(0.3)
    # The process's real resident memory, as psutil sees it.
    assert v.rss_mb == pytest.approx(psutil.Process().memory_info().rss / 2**20, rel=0.2)
    assert ALIVE.fullmatch(v.text())
    assert not hb.due(119.0)  # a new interval started at the beat
    hb.add(1)
    assert hb.due(120.0)
    v2 = hb.beat(125.0)
    assert (v2.frames, v2.faces) == (4, 4) and v2.fps == pytest.approx(1 / 15)


def test_a_zero_interval_never_beats():
    hb = Heartbeat(interval_s=0.0, start_s=0.0)
    hb.add(1)
    assert not hb.due(1e9)


@pytest.fixture(scope="module")
def video(tmp_path_factory, faces_dir):
    path = tmp_path_factory.mktemp("video") / "scene.mp4"
    truth, _ = scene_video(path, faces_dir, n_frames=12, size=(320, 240), face_px=(90, 120), seed=4)
    return path.parent / truth.video


def _alive_lines(caplog) -> list[tuple[int, ...]]:
    return [tuple(float(g) if "." in g else int(g) for g in ALIVE.search(r.getMessage()).groups())
            for r in caplog.records if r.name == "edge.cli.run" and "alive:" in r.getMessage()]


def test_headless_run_logs_alive_lines_at_the_interval(tmp_path, video, detector_dir, caplog):
    caplog.set_level(logging.INFO, logger="edge.cli.run")
    out = tmp_path / "r.jsonl"
    # --max-fps 10 makes 12 frames last at least 1.1 s, so a 0.2 s interval must beat.
    assert cli_main(["run", "--headless", "--source", str(video), "--jsonl", str(out),
                     "--max-fps", "10", "--stats-interval-s", "0.2"]) == 0
    beats = _alive_lines(caplog)
    assert beats, "no alive line was logged"
    frames = [b[0] for b in beats]
    assert frames == sorted(frames) and 0 < frames[-1] <= 12
    assert all(b[1] <= b[0] * 4 and b[3] == 0 and b[6] > 0 for b in beats)  # faces, no drops, real RSS
    assert len(out.read_text().splitlines()) == 12


def test_interval_zero_turns_the_heartbeat_off(tmp_path, video, detector_dir, caplog):
    caplog.set_level(logging.INFO, logger="edge.cli.run")
    assert cli_main(["run", "--headless", "--source", str(video), "--jsonl", str(tmp_path / "r.jsonl"),
                     "--max-fps", "10", "--stats-interval-s", "0"]) == 0
    assert _alive_lines(caplog) == []


def test_stats_interval_flag_has_a_default_and_rejects_negatives(capsys):
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    help_text = " ".join(sub.choices["run"].format_help().split())
    assert "--stats-interval-s" in help_text and "(default: 60.0)" in help_text
    assert RunConfig.from_args(parser.parse_args(["run"])).stats_interval_s == 60.0
    assert cli_main(["run", "--headless", "--source", "0", "--stats-interval-s", "-1"]) == 2
    assert "--stats-interval-s" in capsys.readouterr().err

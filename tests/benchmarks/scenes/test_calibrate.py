"""benchmarks/scenes/calibrate.py: crop-policy calibration on a handful of placed faces."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest

from benchmarks.scenes.calibrate import _Placed, geometry, markdown, register, run_calibration, write_report
from edge.pipeline import PipelineConfig


def _placed(truth, det, angle=None) -> _Placed:
    k = len(truth)
    return _Placed(seeds=np.zeros(k, np.int64), src=np.arange(k), label=np.zeros(k, np.int64),
                   angle=np.zeros(k) if angle is None else np.asarray(angle, float),
                   truth=np.asarray(truth, np.int64), det=np.asarray(det, np.int32),
                   keypoints=np.zeros((k, 6, 2), np.float32), n_placed=k, n_images=1)


@pytest.mark.parametrize("margin, shift_y", [(0.25, -0.1), (0.0, 0.0), (0.5, 0.08)])
def test_geometry_inverts_crop_face(margin, shift_y):
    # A detector box that crop_face(margin, shift_y) would turn into exactly the placed square.
    truth, det = [], []
    for side, x, y in [(200, 50, 40), (120, 300, 200), (160, 400, 10)]:
        box_side = side / (1 + margin)
        cx, cy = x + side / 2, y + side / 2 - shift_y * side
        truth.append((x, y, x + side, y + side))
        det.append((cx - box_side / 2, cy - box_side / 2, cx + box_side / 2, cy + box_side / 2))
    g = geometry(_placed(truth, np.round(det)))
    assert g["n"] == 3
    assert g["margin"]["median"] == pytest.approx(margin, abs=0.02)
    assert g["shift_y"]["median"] == pytest.approx(shift_y, abs=0.01)
    assert g["shift_x"]["median"] == pytest.approx(0.0, abs=0.01)


def test_geometry_ignores_rotated_faces():
    g = geometry(_placed([(0, 0, 100, 100), (0, 0, 100, 100)], [(10, 10, 90, 90), (40, 40, 60, 60)], angle=[0, 15]))
    assert g["n"] == 1 and g["margin"]["median"] == pytest.approx(0.25)


@pytest.fixture(scope="module")
def report(fer_data, emotion_model):
    return run_calibration(fer=fer_data, pipeline=PipelineConfig(emotion_model=str(emotion_model)), n_faces=16, rotated_faces=8, private_faces=12,
                           face_px=(160, 260), seed=1, margins=[0.0, 0.2], shifts=[-0.1, 0.0])


def test_calibration_report_is_sane(report):
    c = report["chosen"]
    assert set(c) == {"margin", "shift_y", "align"}
    assert isinstance(c["align"], bool)
    g = report["geometric"]["estimate"]
    assert (c["margin"] in (0.0, 0.2) and c["shift_y"] in (-0.1, 0.0)) or \
        (c["margin"], c["shift_y"]) == (g["margin"], g["shift_y"]), "the chosen cell is a candidate"
    # BlazeFace's box is a bit smaller than FER-2013's square and sits lower in it.
    assert -0.1 < g["margin"] < 0.6 and -0.3 < g["shift_y"] < 0.1
    assert report["detection"]["public"]["recall"] > 0.5  # big, upright-ish faces are found
    pub = report["public"]
    grid = {f"m={m:+.2f} s={s:+.2f} align={a}" for m in (0.0, 0.2) for s in (-0.1, 0.0) for a in ("on", "off")}
    geo = {f"m={g['margin']:+.2f} s={g['shift_y']:+.2f} align={a}" for a in ("on", "off")}
    assert report["geometric"]["n"] > 0
    assert report["geometric"]["margin"]["median"] == pytest.approx(g["margin"], abs=0.005)
    assert set(pub) - {"_original"} == grid | geo | {"oracle (true square)"}
    for name, row in pub.items():
        if name.startswith("_"):
            continue
        for part in ("all", "upright", "rotated"):
            r = row[part]
            assert r["n"] > 0
            assert 0.0 <= r["agreement"] <= 1.0 and 0.0 <= r["accuracy"] <= 1.0 and -1.0 <= r["pixel_corr"] <= 1.0
    oracle = pub["oracle (true square)"]["all"]["pixel_corr"]
    assert oracle > 0.7, "cropping the true square must give back the original crop"
    assert all(oracle > row["all"]["pixel_corr"] for k, row in pub.items() if not k.startswith(("_", "oracle")))
    # Eye alignment must undo most of a 15 degree turn for the rotated faces.
    on = pub[report["best_by"]["pixel_corr"].replace("align=off", "align=on")]["rotated"]["pixel_corr"]
    off = pub[report["best_by"]["pixel_corr"].replace("align=on", "align=off")]["rotated"]["pixel_corr"]
    assert on > off
    # PrivateTest only reports: the chosen cell and the baselines, no grid.
    assert report["chosen_name"] in report["private_rows"]
    assert set(report["private_rows"]) <= set(report["private"])
    assert len(report["private_rows"]) < len(pub) - 1


def test_report_files_and_cli_parser(report, tmp_path):
    paths = write_report(report, tmp_path, command="fer-edge bench calibrate --faces 16")
    assert json.loads(paths["chosen"].read_text()) == report["chosen"]
    text = paths["md"].read_text()
    assert "--crop-margin" in text and "(chosen)" in text and "PrivateTest" in text
    assert markdown(report).count("| oracle (true square)") == 2
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(["calibrate", "--faces", "10", "--face-px", "100,200", "--margins", "0,0.1"])
    assert args.faces == 10 and args.face_px == (100, 200) and args.margins == [0.0, 0.1]

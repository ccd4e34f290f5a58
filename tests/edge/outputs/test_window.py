"""`fer-edge run`'s window on a real X server (Xvfb, 1280x800 like the laptop in the report):
a 1080p video opens scaled to fit and resizable; small photos are shown enlarged with the whole
key hint, numbered "image k of n", their faces #1..#n; and the pure helpers behind it."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.outputs.window import MAX_UNKNOWN_SCREEN, fit, still_hint
from edge_runtime_helpers import fer_faces
from xvfb_helpers import xvfb_display

REPO = Path(__file__).resolve().parents[3]
SCREEN = (1280, 800)


@pytest.mark.parametrize("size, screen, expected", [
    ((1920, 1080), (1280, 800), (1152, 648)),   # 90 % of the width; the height has room
    ((1080, 1920), (1280, 800), (382, 680)),    # a portrait video: 85 % of the height
    ((640, 480), (1280, 800), (640, 480)),      # fits: its own size, never enlarged
    ((3840, 2160), None, MAX_UNKNOWN_SCREEN),    # screen unknown: capped
])
def test_fit_keeps_the_aspect_and_stays_within_the_screen(size, screen, expected):
    assert fit(size, screen) == expected


def test_still_hint_says_image_k_of_n():
    paths = ("a.jpg", "b.jpg", "c.jpg")
    assert still_hint(paths, "b.jpg") == "image 2 of 3: any key: next image   q or Esc: quit"
    assert still_hint(paths, "c.jpg") == "image 3 of 3: any key or q: close"
    assert still_hint(("a.jpg",), "a.jpg") == "any key or q: close"


@pytest.fixture
def xvfb():
    with xvfb_display(SCREEN, ("Xvfb", "xwininfo", "xprop", "import"), "xvfb x11-utils imagemagick") as display:
        yield display


def _windows(display: str) -> list[tuple[str, str, int, int]]:
    """(id, title, width, height) of every window whose title starts with fer-edge."""
    tree = subprocess.run(["xwininfo", "-display", display, "-root", "-tree"], capture_output=True, text=True,
                          timeout=30).stdout
    out = []
    for m in re.finditer(r'^\s*(0x[0-9a-f]+) "(fer-edge[^"]*)": \([^)]*\)\s+(\d+)x(\d+)\+', tree, re.M):
        out.append((m.group(1), m.group(2), int(m.group(3)), int(m.group(4))))
    return out


def _start(display: str, detector_dir: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "DISPLAY": display, "FER_EDGE_MODEL_DIR": str(detector_dir), "QT_QPA_PLATFORM": "xcb"}
    return subprocess.Popen([sys.executable, "-m", "edge", "run", *args], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_lines(proc: subprocess.Popen, jsonl: Path, n: int) -> None:
    deadline = time.monotonic() + 300  # generous: CI machines can be loaded
    while not (jsonl.is_file() and len(jsonl.read_text().splitlines()) >= n):
        if proc.poll() is not None:
            pytest.fail(f"fer-edge run exited early ({proc.returncode}): {proc.communicate()[1][-2000:]}")
        if time.monotonic() > deadline:
            pytest.fail("nothing processed within 300 s")
        time.sleep(0.2)


def _wait_for_window(display: str, ready) -> list[tuple[str, str, int, int]]:
    deadline = time.monotonic() + 60
    while True:
        wins = _windows(display)
        if (wins and ready(wins)) or time.monotonic() > deadline:
            return wins
        time.sleep(0.3)


def _stop(proc: subprocess.Popen) -> str:
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-2000:]
    return err


def test_a_1080p_video_opens_scaled_to_fit_and_resizable(xvfb, tmp_path, faces_dir, detector_dir):
    faces, _ = fer_faces(faces_dir, per_class=1)
    video = tmp_path / "hd.avi"
    base = np.full((1080, 1920, 3), 128, np.uint8)
    base[300:780, 700:1180] = cv2.cvtColor(cv2.resize(faces[3], (480, 480)), cv2.COLOR_GRAY2BGR)
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (1920, 1080))
    for _ in range(100):
        writer.write(base)
    writer.release()
    jsonl = tmp_path / "o.jsonl"
    proc = _start(xvfb, detector_dir, "--source", str(video), "--jsonl", str(jsonl))
    try:
        _wait_for_lines(proc, jsonl, 3)
        wins = _wait_for_window(xvfb, lambda ws: max(w[2] for w in ws) > 100)
        hints = subprocess.run(["xprop", "-display", xvfb, "-id", max(wins, key=lambda w: w[2] * w[3])[0],
                                "WM_NORMAL_HINTS"], capture_output=True, text=True, timeout=30).stdout
    finally:
        _stop(proc)
    wid, title, w, h = max(wins, key=lambda w: w[2] * w[3])
    assert w <= SCREEN[0] and h <= SCREEN[1], f"{w}x{h} does not fit a {SCREEN} screen"
    assert w >= 0.8 * SCREEN[0] * 0.9, f"{w}x{h}: scaled down further than needed"
    # Resizable: a fixed-size window (WINDOW_AUTOSIZE) announces equal minimum and maximum sizes.
    sizes = dict(re.findall(r"program specified (minimum|maximum) size: (\d+ by \d+)", hints))
    assert not ("maximum" in sizes and sizes.get("minimum") == sizes["maximum"]), hints


def test_small_photos_are_enlarged_numbered_per_image_and_say_image_k_of_n(xvfb, tmp_path, faces_dir,
                                                                         detector_dir):
    faces, _ = fer_faces(faces_dir, per_class=1)
    src = tmp_path / "photos"
    src.mkdir()
    for k in range(3):
        image = np.full((256, 256, 3), 150, np.uint8)
        image[40:216, 40:216] = cv2.cvtColor(cv2.resize(faces[3 + k], (176, 176)), cv2.COLOR_GRAY2BGR)
        cv2.imwrite(str(src / f"img{k}.png"), image)
    jsonl = tmp_path / "o.jsonl"
    proc = _start(xvfb, detector_dir, "--source", str(src), "--jsonl", str(jsonl))
    try:
        _wait_for_lines(proc, jsonl, 1)
        wins = _wait_for_window(xvfb, lambda ws: any("image 1 of 3" in w[1] for w in ws))
        shot = tmp_path / "window.png"
        wid = next(w[0] for w in wins if "image 1 of 3" in w[1])
        deadline = time.monotonic() + 60
        while True:  # until the picture is painted (a fresh window is black)
            subprocess.run(["import", "-display", xvfb, "-window", wid, str(shot)], check=True, timeout=30)
            window = cv2.imread(str(shot))
            if window.mean() > 60 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
    finally:
        err = _stop(proc)
    titles = [w[1] for w in wins]
    assert any(t == "fer-edge: img0.png (image 1 of 3: any key: next image   q or Esc: quit)" for t in titles), titles
    assert window.shape[1] >= 640, "a 256-px photo should be shown enlarged"
    # The whole hint is on screen: its dark strip ends before the picture's right edge, text inside it.
    rows = window[-14:-2]
    dark_cols = np.flatnonzero((rows < 30).all(axis=-1).mean(axis=0) > 0.6)
    assert dark_cols.size and dark_cols[0] < 10 and dark_cols[-1] < window.shape[1] - 10, "the hint is cut"
    assert (rows > 220).all(axis=-1).sum() > 30, "no text in the hint strip"
    first = json.loads(jsonl.read_text().splitlines()[0])
    assert [f["id"] for f in first["faces"]] == list(range(1, len(first["faces"]) + 1))
    assert "images 1 " in err and "frames/s" not in err and "images/s" not in err  # stepped by key: no rate


def test_a_headless_photo_run_numbers_faces_per_image(tmp_path, faces_dir, detector_dir, capsys):
    from edge.cli import main as cli_main

    faces, _ = fer_faces(faces_dir, per_class=1)
    src = tmp_path / "photos"
    src.mkdir()
    for k in range(4):
        image = np.full((480, 640, 3), 140, np.uint8)
        for j, x in enumerate((40, 340)):
            image[150:390, x:x + 240] = cv2.cvtColor(cv2.resize(faces[(k + j) % 7], (240, 240)), cv2.COLOR_GRAY2BGR)
        cv2.imwrite(str(src / f"group{k}.jpg"), image)
    jsonl = tmp_path / "o.jsonl"
    assert cli_main(["run", "--headless", "--source", str(src), "--jsonl", str(jsonl)]) == 0
    err = capsys.readouterr().err
    records = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert len(records) == 4 and sum(len(r["faces"]) for r in records) >= 4
    for r in records:
        assert sorted(f["id"] for f in r["faces"]) == list(range(1, len(r["faces"]) + 1)), r["source"]
    assert err.startswith("images 4 ") and "images/s" in err

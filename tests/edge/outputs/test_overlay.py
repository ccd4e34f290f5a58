"""Overlay drawing, and the real OpenCV window under Xvfb (screenshot, box colour on screen)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.labels import LABELS
from edge.outputs.overlay import (FONT, HUD_BG, PALETTE, PANEL_BG, Metrics, contrast_ratio, draw, label_color, layout,
                          text_color_on, text_size)
from edge.outputs.overlay import _fill
from edge.types import Faces, Frame, FrameResult, StageTimings
from xvfb_helpers import xvfb_display

REPO = Path(__file__).resolve().parents[3]


def result_for(image: np.ndarray, boxes, label_index, probs=None) -> FrameResult:
    n = len(boxes)
    if probs is None:
        probs = np.full((n, len(LABELS)), 0.05, np.float32)
        probs[np.arange(n), label_index] = 0.7
    return FrameResult(
        frame=Frame(image, 0, 0.0), faces=Faces(np.asarray(boxes, np.int32).reshape(-1, 4),
                                                 np.full((n,), 0.9, np.float32), np.zeros((n, 6, 2), np.float32)),
        track_ids=np.arange(1, n + 1, dtype=np.int64), probs=probs, labels=LABELS,
        timings=StageTimings(detect_ms=2.0, preprocess_ms=0.3, classify_ms=0.7, track_ms=0.1, total_ms=3.1),
        label_index=np.asarray(label_index, np.int64))


def test_palette_colours_are_distinct_per_label():
    colours = [label_color(name, i) for i, name in enumerate(LABELS)]
    assert len(set(colours)) == len(LABELS)
    assert label_color("unknown-label", 2) in PALETTE.values()


@pytest.mark.parametrize("boxes, labels", [
    ([[100, 80, 220, 200]], [3]),
    ([[40, 60, 120, 140], [300, 100, 420, 220]], [0, 6]),
    ([[0, 0, 90, 90], [540, 380, 639, 479]], [5, 1]),  # at the frame's corners: panels and captions move inside
    ([[-20, -20, 60, 60]], [4]),  # partly outside the frame: drawing clips, no error
])
def test_draw_puts_label_coloured_boxes_at_the_face(boxes, labels):
    image = np.full((480, 640, 3), 128, np.uint8)
    before = image.copy()
    out = draw(image, result_for(image, boxes, labels), fps=29.7)
    np.testing.assert_array_equal(image, before)  # the input frame is left alone
    assert out.shape == image.shape and out.dtype == np.uint8
    for (x1, y1, x2, y2), li in zip(boxes, labels):
        colour = np.asarray(label_color(LABELS[li], li), np.uint8)
        # The bottom edge of the box is drawn in the label's colour (the top one carries the caption).
        yb = min(max(y2, 0), 479)
        xs = slice(max(x1, 0) + 3, min(x2, 639) - 3)
        assert (out[yb, xs] == colour).all(axis=-1).mean() > 0.9


def test_draw_with_no_faces_only_adds_the_hud():
    image = np.full((240, 320, 3), 128, np.uint8)
    out = draw(image, result_for(image, [], []))
    changed = np.any(out != image, axis=-1)
    ys, xs = np.nonzero(changed)
    assert changed.any() and ys.max() < 40  # the HUD strip at the top, nothing else
    assert not np.any(draw(image, result_for(image, [], []), hud=False) != image)


def test_draw_in_place_and_the_held_label_colour():
    image = np.full((240, 320, 3), 128, np.uint8)
    probs = np.full((1, len(LABELS)), 0.05, np.float32)
    probs[0, 3] = 0.6  # argmax happy, but hysteresis still shows sad
    out = draw(image, result_for(image, [[50, 50, 150, 150]], [4], probs=probs), copy=False)
    assert out is image
    assert tuple(int(v) for v in image[150, 100]) == label_color("sad")


def _crowd(w=1280, h=720):
    """12 faces on a gray frame: one under the HUD, some at the edges and corners, some close
    together (where the 7-bar panels cannot fit), each with its own label colour."""
    boxes = [[4, 4, 84, 84], [200, 10, 290, 100], [300, 12, 390, 102],  # top left (under the HUD); a tight pair
             [w - 90, 0, w, 90], [0, h - 80, 80, h], [w - 100, h - 100, w, h],  # corners
             [560, 300, 640, 380], [650, 300, 730, 380], [560, 390, 640, 470],  # a tight block of three
             [900, 200, 1040, 340], [80, 330, 200, 450], [1100, 420, 1180, 500]]
    labels = [k % len(LABELS) for k in range(len(boxes))]
    image = np.full((h, w, 3), 128, np.uint8)
    return image, result_for(image, boxes, labels)


def _rect_mask(shape, rect) -> np.ndarray:
    mask = np.zeros(shape[:2], bool)
    x1, y1, x2, y2 = (max(int(v), 0) for v in rect)
    mask[y1:y2, x1:x2] = True
    return mask


@pytest.mark.parametrize("bars", [True, False])
def test_crowd_labels_are_visible_inside_the_frame_and_clear_of_the_hud_and_other_faces(bars):
    image, result = _crowd()
    h, w = image.shape[:2]
    out = draw(image, result, fps=31.5, bars=bars, hud=True)
    lay = layout(result, image.shape, 31.5, bars=bars, hud=True)
    hud = _rect_mask(image.shape, lay.hud)
    # The HUD is intact: only its black ground and gray text, no label colour under or over it.
    assert (out[hud] == HUD_BG).all(axis=-1).mean() > 0.5
    spread = out[hud].max(axis=-1).astype(int) - out[hud].min(axis=-1)
    assert spread.max() == 0
    for i in range(len(result.faces)):
        colour = np.asarray(label_color(LABELS[int(result.label_index[i])]), np.uint8)
        x1, y1, x2, y2 = (int(v) for v in lay.captions[i])
        assert 0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h, "label block outside the frame"
        own = _rect_mask(image.shape, lay.captions[i])
        assert not (own & hud).any()
        # Most of the label block shows the label's colour: it is drawn and nothing covers it.
        assert (out[own] == colour).all(axis=-1).mean() > 0.4
        # Inside every OTHER face's box, nothing of this face's label or bars is drawn: the
        # pixels there are the frame's own (apart from that face's own label block).
        for j in range(len(result.faces)):
            if j == i:
                continue
            bx1, by1, bx2, by2 = (int(v) for v in result.faces.xyxy[j])
            inner = _rect_mask(image.shape, (bx1 + 2, by1 + 2, bx2 - 1, by2 - 1)) & ~_rect_mask(image.shape, lay.captions[j])
            inner &= ~hud  # the HUD itself is drawn over everything
            assert (out[inner] == image[inner]).all(), f"face {j}'s box is covered by another label"


def test_bars_are_a_panel_where_there_is_room_and_a_compact_bar_where_not():
    image, result = _crowd()
    out = draw(image, result, hud=True, bars=True)
    lay = layout(result, image.shape, hud=True, bars=True)
    assert lay.has_panel.any() and lay.compact.any()
    assert (lay.has_panel ^ lay.compact).all()  # each face gets exactly one of them
    colours = [np.asarray(label_color(name, k), np.uint8) for k, name in enumerate(LABELS)]
    for i in np.flatnonzero(lay.has_panel):
        panel = out[_rect_mask(image.shape, lay.panels[i])]
        assert (panel == PANEL_BG).all(axis=-1).mean() > 0.3  # the dark ground behind the names
        assert (panel == (255, 255, 255)).all(axis=-1).any()  # the 3-letter names, in white
    # The compact bar shows the face's probabilities as coloured segments in the label block.
    i = int(np.flatnonzero(lay.compact)[0])
    block = out[_rect_mask(image.shape, lay.captions[i])]
    big = [k for k in range(len(LABELS)) if result.probs[i, k] >= 0.1]
    assert all((block == colours[k]).all(axis=-1).any() for k in big)
    plain = draw(image, result, hud=False, bars=False)  # (the HUD's anti-aliased text has grays too)
    assert not (plain == PANEL_BG).all(axis=-1).any()


@pytest.mark.parametrize("width", [640, 1920])
def test_panel_bars_follow_each_frames_probabilities(width):
    """The panel's ground is rendered once and reused: each frame shows only its own bars."""
    image = np.full((width * 9 // 16, width, 3), 128, np.uint8)
    bar_w = Metrics.for_width(width).bar_w
    happy = np.asarray(label_color("happy", 3), np.uint8)
    for p in (0.9, 0.2, 0.6, 0.0):
        probs = np.full((1, len(LABELS)), (1.0 - p) / (len(LABELS) - 1), np.float32)
        probs[0, 3] = p
        result = result_for(image, [[100, 100, 220, 240]], [3], probs)
        out = draw(image, result, hud=False)
        x1, y1, x2, y2 = layout(result, image.shape, hud=False).panels[0]
        drawn = (out[y1:y2, x1:x2] == happy).all(axis=-1).sum(axis=1).max()
        assert drawn == (round(p * bar_w) + 1 if round(p * bar_w) > 0 else 0)  # (the filled rectangle includes both ends)


@pytest.mark.parametrize("width", [320, 640, 1280, 1920])
def test_text_sizes_from_the_cache_are_opencvs(width):
    """Label and HUD sizes are cached by the shape of their digits; they must equal OpenCV's own."""
    rng = np.random.default_rng(width)
    m = Metrics.for_width(width)
    texts = ["0", "7", "#12 happy 87%", "#3 sad 100%", "30.1 fps  |  det 1.8 ms  cls 0.6 ms  total 3.3 ms  faces 2"]
    texts += ["".join(rng.choice(list("0123456789 .#%msdetclsfps|happyangry"), size=rng.integers(1, 50)))
              for _ in range(300)]
    for text in texts:
        for scale, thickness in ((m.caption_fs, m.thick), (m.hud_fs, m.thick), (m.row_fs, 1)):
            assert text_size(text, scale, thickness) == cv2.getTextSize(text, FONT, scale, thickness), text


def test_label_text_contrasts_with_its_background():
    for k, name in enumerate(LABELS):
        bg = label_color(name, k)
        assert contrast_ratio(text_color_on(bg), bg) >= 4.5, name  # WCAG AA for normal text
    # Drawn: the text of a "sad" label (blue) is white, of a "happy" label (yellow) black.
    image = np.full((480, 640, 3), 128, np.uint8)
    result = result_for(image, [[100, 150, 250, 300], [400, 150, 550, 300]], [4, 3])
    out = draw(image, result, hud=False, bars=False)
    lay = layout(result, image.shape, hud=False, bars=False)
    sad, happy = (out[_rect_mask(image.shape, lay.captions[i])] for i in (0, 1))
    near_white, near_black = (lambda px: (px > 230).all(axis=-1)), (lambda px: (px < 25).all(axis=-1))
    assert near_white(sad).sum() > 20 and not near_black(sad).any()
    assert near_black(happy).sum() > 20 and not near_white(happy).any()


def test_hint_line_at_the_bottom_and_labels_clear_of_it():
    image = np.full((480, 640, 3), 128, np.uint8)
    result = result_for(image, [[20, 380, 140, 479]], [3])
    out = draw(image, result, hud=False, hint="any key: next image   q: quit")
    lay = layout(result, image.shape, hud=False, hint="any key: next image   q: quit")
    x1, y1, x2, y2 = lay.hint
    assert y2 == 480 and x1 == 0 and x2 > 100
    hint = _rect_mask(image.shape, lay.hint)
    assert (out[hint] == HUD_BG).all(axis=-1).mean() > 0.5
    assert not (_rect_mask(image.shape, lay.captions[0]) & hint).any()


# ----------------------------------------------------------------------------- the real window

def _longest_run(mask: np.ndarray) -> int:
    """Longest horizontal run of True in a (H, W) bool mask."""
    padded = np.pad(mask.astype(np.int8), ((0, 0), (1, 1)))
    d = np.diff(padded, axis=1)
    starts, ends = np.nonzero(d == 1), np.nonzero(d == -1)
    return int((ends[1] - starts[1]).max()) if len(starts[1]) else 0


@pytest.fixture
def xvfb():
    with xvfb_display((1024, 768), ("Xvfb", "import"), "xvfb x11-apps imagemagick") as display:
        yield display


def _gray_scene_video(path: Path, faces_dir: Path, n_frames: int = 200) -> Path:
    """Faces on a flat gray wall: no saturated colour anywhere until the overlay draws it."""
    from benchmarks.scenes.synthetic import paste_face
    from edge_runtime_helpers import fer_faces

    faces, _ = fer_faces(faces_dir, per_class=1)
    base = np.full((360, 640, 3), 128, np.uint8)
    for k, x in enumerate((40, 250, 460)):
        paste_face(base, faces[3 + k], (x, 100, x + 150, 250))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (640, 360))
    for _ in range(n_frames):
        writer.write(base)
    writer.release()
    return path


def test_run_window_under_xvfb_shows_the_overlay(xvfb, tmp_path, faces_dir, detector_dir):
    video = _gray_scene_video(tmp_path / "gray.avi", faces_dir)
    jsonl = tmp_path / "out.jsonl"
    env = {**os.environ, "DISPLAY": xvfb, "FER_EDGE_MODEL_DIR": str(detector_dir), "QT_QPA_PLATFORM": "xcb"}
    proc = subprocess.Popen([sys.executable, "-m", "edge", "run", "--source", str(video), "--max-fps", "10",
                             "--jsonl", str(jsonl)], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 300  # generous: CI machines can be loaded
        while not (jsonl.is_file() and len(jsonl.read_text().splitlines()) >= 5):
            if proc.poll() is not None:
                pytest.fail(f"fer-edge run exited early ({proc.returncode}): {proc.communicate()[1][-2000:]}")
            if time.monotonic() > deadline:
                pytest.fail("no frames processed within 300 s")
            time.sleep(0.2)
        time.sleep(0.5)  # let the window repaint the latest frame
        shot = tmp_path / "screen.png"
        subprocess.run(["import", "-display", xvfb, "-window", "root", str(shot)], check=True, timeout=30)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err[-2000:]
    records = [json.loads(line) for line in jsonl.read_text().splitlines()]
    faces = records[-1]["faces"]
    assert faces, "the detector found none of the three faces"
    screen = cv2.imread(str(shot))  # BGR, like the palette
    for face in faces:
        mask = np.all(screen == np.asarray(label_color(face["emotion"]), np.uint8), axis=-1)
        x1, y1, x2, y2 = face["box"]
        # A box outline is the only thing drawn in this colour that spans the face's width and
        # height (bars and captions are shorter); the gray scene has no saturated colour at all.
        assert _longest_run(mask) >= 0.9 * (x2 - x1), f"no {face['emotion']} box edge on screen"
        assert _longest_run(mask.T) >= 0.9 * (y2 - y1), f"no {face['emotion']} box side on screen"
    assert "frames" in err and "p95" in err  # the exit summary


def test_run_window_plays_a_video_at_its_own_rate_without_qt_warnings(xvfb, tmp_path, faces_dir, detector_dir):
    video = _gray_scene_video(tmp_path / "gray.avi", faces_dir, n_frames=30)  # 3 s at 10 frames/s
    env = {**os.environ, "DISPLAY": xvfb, "FER_EDGE_MODEL_DIR": str(detector_dir), "QT_QPA_PLATFORM": "xcb"}
    done = subprocess.run([sys.executable, "-m", "edge", "run", "--source", str(video), "--jsonl",
                           str(tmp_path / "o.jsonl")], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "QFontDatabase" not in done.stderr and "XNNPACK" not in done.stderr
    assert "at its own frame rate" in done.stderr and "--fast" in done.stderr
    # Paced by the file's own clock: 30 frames at 10 frames/s cannot be over before about 3 s.
    wall_s = float(done.stderr.split(" frames/s over ")[1].split(" s")[0])
    assert wall_s >= 2.5, done.stderr


def _find_frame(screen: np.ndarray, frame: np.ndarray) -> np.ndarray | None:
    """The part of a screenshot that shows `frame`, found by its (unannotated) top-left corner."""
    h, w = frame.shape[:2]
    patch = frame[10:110, 10:110].astype(np.int32)
    found = cv2.matchTemplate(screen, frame[10:110, 10:110], cv2.TM_SQDIFF)
    x, y = cv2.minMaxLoc(found)[2]
    # On a smooth background the correlation's rounding can put the minimum a few pixels off:
    # settle on the exact offset nearby.
    best, ox, oy = np.inf, x - 10, y - 10
    for dy in range(-12, 13):
        for dx in range(-12, 13):
            cx, cy = x + dx, y + dy
            if 0 <= cx <= screen.shape[1] - 100 and 0 <= cy <= screen.shape[0] - 100:
                err = np.abs(screen[cy:cy + 100, cx:cx + 100].astype(np.int32) - patch).mean()
                if err < best:
                    best, ox, oy = err, cx - 10, cy - 10
    shown = screen[max(oy, 0):oy + h, max(ox, 0):ox + w]
    if shown.shape != frame.shape or best > 8:
        return None
    return shown


def test_run_window_on_an_image_folder_shows_which_keys_it_waits_for(xvfb, tmp_path, faces_dir, detector_dir):
    from benchmarks.scenes.synthetic import make_scene_image
    from edge_runtime_helpers import fer_faces

    faces, labels = fer_faces(faces_dir, per_class=1)
    src = tmp_path / "photos"
    src.mkdir()
    for k in range(2):
        image, _ = make_scene_image(faces, labels, size=(640, 480), faces_per_frame=1, face_px=(200, 240), seed=k,
                                    background="gradient")
        cv2.imwrite(str(src / f"img{k}.png"), image)
    jsonl = tmp_path / "out.jsonl"
    env = {**os.environ, "DISPLAY": xvfb, "FER_EDGE_MODEL_DIR": str(detector_dir), "QT_QPA_PLATFORM": "xcb"}
    proc = subprocess.Popen([sys.executable, "-m", "edge", "run", "--source", str(src), "--jsonl", str(jsonl)],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 300
        while not (jsonl.is_file() and jsonl.read_text().strip()):
            if proc.poll() is not None:
                pytest.fail(f"fer-edge run exited early ({proc.returncode}): {proc.communicate()[1][-2000:]}")
            if time.monotonic() > deadline:
                pytest.fail("no image processed within 300 s")
            time.sleep(0.2)
        # The window waits for a key, so it stays on the first image: screenshots until it is painted.
        first = cv2.imread(str(src / "img0.png"))
        shot = tmp_path / "screen.png"
        while True:
            subprocess.run(["import", "-display", xvfb, "-window", "root", str(shot)], check=True, timeout=30)
            shown = _find_frame(cv2.imread(str(shot)), first)
            if shown is not None or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        tree = subprocess.run(["xwininfo", "-display", xvfb, "-root", "-tree"], capture_output=True, text=True,
                              timeout=30).stdout if shutil.which("xwininfo") else ""
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err[-2000:]
    assert len(jsonl.read_text().splitlines()) == 1  # still on image 1 of 2: it waits for the key
    assert shown is not None, "the frame never appeared on screen"
    # The hint: a black strip along the frame's bottom left with white text in it.
    strip = shown[462:478, 2:150]
    assert (strip < 30).all(axis=-1).mean() > 0.5, "no dark hint strip at the bottom left"
    assert (strip > 220).all(axis=-1).sum() > 30, "no text in the hint strip"
    assert not (first[462:478, 2:150] < 30).all(axis=-1).any()  # the scene itself has no black there
    if tree:
        assert "any key: next image" in tree and "q or Esc: quit" in tree  # the window title says it too
    assert "QFontDatabase" not in err


def test_an_uncertain_face_gets_its_own_look():
    """A face turned too far for its label: a thin grey box and "?" before the label, so it does
    not read as a confident answer; a sure face beside it keeps its label's colour."""
    from dataclasses import replace

    from edge.outputs.overlay import UNCERTAIN_COLOR, _caption_text

    image = np.full((480, 640, 3), 255, np.uint8)
    boxes = [[60, 200, 180, 320], [360, 200, 480, 320]]
    result = replace(result_for(image, boxes, [3, 3]), uncertain=np.array([True, False]))
    out = draw(image, result, hud=False, bars=False)
    assert tuple(int(v) for v in out[320, 120]) == UNCERTAIN_COLOR
    assert tuple(int(v) for v in out[320, 420]) == label_color(LABELS[3], 3)
    assert _caption_text(result, 0, 3).startswith("#1 ? happy") and "?" not in _caption_text(result, 1, 3)


@pytest.mark.parametrize("rect", [(10, 20, 150, 60), (-30, -5, 40, 12), (600, 470, 700, 500), (50, 50, 50, 80),
                                  (80, 10, 20, 40), (0, 0, 640, 480)])
@pytest.mark.parametrize("view", ["frame", "every other column", "gray"])
def test_fill_paints_what_a_numpy_slice_paints(rect, view):
    """_fill writes rows as runs of bytes on a whole BGR frame: the same pixels as the slice
    assignment it replaces, clipped to the frame, on views and gray frames as well."""
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
    if view == "every other column":
        frame = frame[:, ::2]
    elif view == "gray":
        frame = np.ascontiguousarray(frame[:, :, 0])
    colour = (37, 200, 91) if frame.ndim == 3 else 180
    want = frame.copy()
    x1, y1, x2, y2 = rect
    want[max(y1, 0):max(y2, 0), max(x1, 0):max(x2, 0)] = colour
    _fill(frame, x1, y1, x2, y2, colour)
    np.testing.assert_array_equal(frame, want)

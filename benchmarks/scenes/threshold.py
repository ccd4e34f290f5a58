"""`fer-edge bench threshold`: the detector's false positives on face-free video and its recall on
faces, for a range of score thresholds; the default threshold is read off this curve.

Face-free videos (nothing in them is a face, so every box is a false positive):
  - scenes without people: the synthetic backgrounds of benchmarks.scenes.synthetic (a room, a textured
    wall, blurred shapes, gradients), seen by a slowly panning camera with sensor grain;
  - test patterns: colour bars, a rotating checkerboard, a zone plate, a page of text, a green
    test card with a rotating wedge and a running clock;
  - Chromium's own fake camera (when Chromium and Playwright are installed), grabbed through
    getUserMedia: a user saw this green test card boxed as "angry 41%" at scores 0.55-0.62;
  - skin-coloured ovals without features, the closest thing to a face that is not one;
  - optionally the user's own face-free footage (--extra SOURCE).
Faces: synthetic scene videos with FER-2013 **PublicTest** faces (the validation split: the
default is a choice, and PrivateTest is never used for choices), 1-4 per video, 60-300 px.

For each threshold a detector is built with it and run on every frame, so the numbers are
exactly what that setting gives (weighted NMS makes filtering one low-threshold run by score an
approximation). Reported per threshold: the share of face-free frames with at least one box
(and per kind), boxes per 1,000 face-free frames, recall (IoU >= 0.3 with the placed square;
overall and for faces >= 150 px, the size short range is for) and precision on the face videos.
The chosen default is the lowest threshold whose face-free false-positive rate is at most
--max-fp-rate: the most recall that still keeps empty scenes empty.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from benchmarks.common.outputs import pyplot, save_figure, write_report_files
from benchmarks.common.samples import rate
from edge.pipeline import PipelineConfig
from train.data import default_data_path

log = logging.getLogger(__name__)

THRESHOLDS = tuple(round(0.30 + 0.05 * k, 2) for k in range(14))  # 0.30 ... 0.95
NEGATIVE_KINDS = ("room", "noise", "shapes", "gradient", "bars", "checker", "zoneplate", "text",
                  "green_card", "ovals")
DEFAULT_OUT = "reports/threshold"
DEFAULT_DATA = default_data_path()
DEFAULT_MAX_FP_RATE = 0.005  # at most 1 face-free frame in 200 with a box
BIG_FACE_PX = 150  # placed squares this large are what short range is for (README: recall by size)


# ---------------------------------------------------------------- face-free videos

def _pan(canvas: np.ndarray, size: tuple[int, int], i: int, n: int) -> np.ndarray:
    """A size-window of a larger canvas that drifts across it over n frames (a slow camera pan)."""
    w, h = size
    ch, cw = canvas.shape[:2]
    t = i / max(n - 1, 1)
    x = int(round((cw - w) * (0.5 - 0.5 * math.cos(math.pi * t))))
    y = int(round((ch - h) * 0.5 * (1 + math.sin(2 * math.pi * t)) / 2))
    return canvas[y:y + h, x:x + w]


def _bars(w: int, h: int) -> np.ndarray:
    """Colour bars: 75 % white, yellow, cyan, green, magenta, red, blue; reversed below; a gray ramp."""
    img = np.zeros((h, w, 3), np.uint8)
    top = [(191, 191, 191), (0, 191, 191), (191, 191, 0), (0, 191, 0), (191, 0, 191), (0, 0, 191), (191, 0, 0)]
    edges = np.linspace(0, w, 8).astype(int)
    for k, c in enumerate(top):
        img[:int(h * 0.67), edges[k]:edges[k + 1]] = c
        img[int(h * 0.67):int(h * 0.75), edges[k]:edges[k + 1]] = top[6 - k]
    img[int(h * 0.75):] = np.linspace(0, 255, w).astype(np.uint8)[None, :, None]
    return img


def _zoneplate(w: int, h: int, phase: float) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r2 = (xx - w / 2) ** 2 + (yy - h / 2) ** 2
    v = 127.5 + 127.5 * np.cos(r2 * (math.pi / (1.5 * max(w, h))) + phase)
    return cv2.cvtColor(v.astype(np.uint8), cv2.COLOR_GRAY2BGR)


def _checker(w: int, h: int, cell: int, angle: float) -> np.ndarray:
    n = 2 * max(w, h)
    yy, xx = np.mgrid[0:n, 0:n]
    board = (((xx // cell) + (yy // cell)) % 2 * 255).astype(np.uint8)
    m = cv2.getRotationMatrix2D((n / 2, n / 2), angle, 1.0)
    board = cv2.warpAffine(board, m, (n, n), flags=cv2.INTER_LINEAR)
    y0, x0 = (n - h) // 2, (n - w) // 2
    return cv2.cvtColor(np.ascontiguousarray(board[y0:y0 + h, x0:x0 + w]), cv2.COLOR_GRAY2BGR)


def _text_page(w: int, h: int, rng: np.random.Generator) -> np.ndarray:
    page = np.full((2 * h, w, 3), 238, np.uint8)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz      ,.;0123456789"))
    y = 24
    while y < 2 * h - 8:
        line = "".join(rng.choice(letters, size=int(rng.integers(20, 60))))
        scale = float(rng.uniform(0.5, 0.9))
        cv2.putText(page, line, (12, y), cv2.FONT_HERSHEY_SIMPLEX, scale, (30, 30, 30), 1, cv2.LINE_AA)
        y += int(28 * scale + 10)
    return page


def _green_card(w: int, h: int, i: int, fps: float) -> np.ndarray:
    """A green test card: a light-green disc with a rotating wedge cut out, a running clock."""
    img = np.empty((h, w, 3), np.uint8)
    img[:] = (0, 128, 0)
    light = (16, 255, 64)
    centre, radius = (w // 2, h // 2), h // 4
    start = (i * 12) % 360
    cv2.ellipse(img, centre, (radius, radius), 0, start + 60, start + 360, light, -1, cv2.LINE_AA)
    t_ms = int(1000 * i / fps)
    clock = f"{t_ms // 3_600_000}:{t_ms // 60_000 % 60:02d}:{t_ms // 1000 % 60:02d}:{t_ms % 1000:03d} {i}"
    cv2.putText(img, clock, (w // 7, h // 10), cv2.FONT_HERSHEY_SIMPLEX, h / 480, light, 2, cv2.LINE_AA)
    s = max(8, h // 12)
    for x, y in ((0, 0), (w - s, 0), (0, h - s), (w - s, h - s)):
        img[y:y + s, x:x + s] = light
    return img


def _ovals(w: int, h: int, rng: np.random.Generator) -> np.ndarray:
    """Skin-toned shaded ovals (featureless head shapes) on a plain wall."""
    from benchmarks.scenes.synthetic import make_background

    img = make_background("room", (w, h), rng).astype(np.float32)
    for _ in range(int(rng.integers(2, 5))):
        ax = int(rng.integers(h // 10, h // 4))
        ay = int(ax * rng.uniform(1.15, 1.4))
        cx, cy = int(rng.integers(ax, w - ax)), int(rng.integers(ay, h - ay))
        skin = np.array([rng.uniform(90, 170), rng.uniform(120, 190), rng.uniform(170, 240)], np.float32)  # BGR
        mask = np.zeros((h, w), np.float32)
        cv2.ellipse(mask, (cx, cy), (ax, ay), 0, 0, 360, 1.0, -1, cv2.LINE_AA)
        yy = (np.arange(h, dtype=np.float32)[:, None] - (cy - ay)) / (2 * ay)
        shade = 1.05 - 0.3 * np.clip(yy, 0, 1)  # lighter at the top, as under a ceiling light
        mask = cv2.GaussianBlur(mask, (0, 0), 2.0)[..., None]
        img = img * (1 - mask) + (skin[None, None, :] * shade[..., None]) * mask
    return np.clip(img, 0, 255).astype(np.uint8)


def negative_frames(kind: str, size: tuple[int, int], n_frames: int, seed: int, fps: float = 15.0,
                    grain: float = 2.0) -> Iterator[np.ndarray]:
    """n_frames (H, W, 3) uint8 BGR frames of one face-free kind (see NEGATIVE_KINDS)."""
    from benchmarks.scenes.synthetic import BACKGROUNDS, make_background

    w, h = size
    rng = np.random.default_rng(seed)
    if kind in BACKGROUNDS:
        canvas = make_background(kind, (w + w // 4, h + h // 4), rng)
        make = lambda i: _pan(canvas, size, i, n_frames)  # noqa: E731
    elif kind == "bars":
        canvas = _bars(w + w // 4, h)
        make = lambda i: _pan(canvas, size, i, n_frames)  # noqa: E731
    elif kind == "checker":
        cell = int(rng.integers(16, 64))
        make = lambda i: _checker(w, h, cell, 0.5 * i)  # noqa: E731
    elif kind == "zoneplate":
        make = lambda i: _zoneplate(w, h, 0.3 * i)  # noqa: E731
    elif kind == "text":
        canvas = _text_page(w, h, rng)
        make = lambda i: canvas[int(i * h / max(n_frames, 1)):][:h]  # noqa: E731  (scrolls down the page)
    elif kind == "green_card":
        make = lambda i: _green_card(w, h, i, fps)  # noqa: E731
    elif kind == "ovals":
        canvas = _ovals(w + w // 4, h + h // 4, rng)
        make = lambda i: _pan(canvas, size, i, n_frames)  # noqa: E731
    else:
        raise ValueError(f"unknown face-free kind {kind!r}; use one of {', '.join(NEGATIVE_KINDS)}")
    for i in range(n_frames):
        frame = np.ascontiguousarray(make(i))
        if grain > 0:
            frame = np.clip(frame + rng.normal(0, grain, frame.shape), 0, 255).astype(np.uint8)
        yield frame


CHROMIUM = "/usr/bin/chromium"


def chromium_fake_camera(n_frames: int, size: tuple[int, int] = (640, 480), executable: str = CHROMIUM,
                         interval_ms: int = 100) -> list[np.ndarray]:
    """n_frames (H, W, 3) uint8 BGR frames of Chromium's own fake camera (its green test card),
    grabbed through getUserMedia in headless Chromium; [] when Chromium or Playwright is missing."""
    import base64

    if not Path(executable).exists():
        return []
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return []
    page_html = "<video id=v autoplay muted playsinline></video><canvas id=c></canvas>"
    grab = """() => { const v = document.getElementById('v'), c = document.getElementById('c');
                      c.width = v.videoWidth; c.height = v.videoHeight; c.getContext('2d').drawImage(v, 0, 0);
                      return c.toDataURL('image/png'); }"""
    frames = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
            "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"])
        try:
            page = browser.new_page()
            # getUserMedia needs a secure origin; localhost is one, and nothing leaves the browser.
            page.route("http://localhost/**", lambda route: route.fulfill(body=page_html, content_type="text/html"))
            page.goto("http://localhost/")
            page.evaluate("""async ([w, h]) => { const v = document.getElementById('v');
                               v.srcObject = await navigator.mediaDevices.getUserMedia(
                                   {video: {width: {exact: w}, height: {exact: h}}});
                               await v.play(); }""", list(size))
            for _ in range(n_frames):
                data = page.evaluate(grab)
                png = np.frombuffer(base64.b64decode(data.split(",", 1)[1]), np.uint8)
                frames.append(cv2.imdecode(png, cv2.IMREAD_COLOR))
                page.wait_for_timeout(interval_ms)
        finally:
            browser.close()
    return frames


def _extra_frames(source: str, max_frames: int) -> Iterator[np.ndarray]:
    """Frames of the user's own face-free footage (a video, an image, a folder or a glob)."""
    from edge.capture.source import parse_source
    from edge.capture.thread import Capture, EndOfStream

    spec = parse_source(source)
    with Capture.from_spec(spec) as cap:
        last, n = -1, 0
        while n < max_frames:
            try:
                frame = cap.read(after=last, timeout_s=5.0)
            except EndOfStream:
                return
            if frame is None:
                continue
            last = frame.index
            n += 1
            yield frame.image


# ---------------------------------------------------------------- the measurement

@dataclass
class _Counts:
    frames: int = 0
    frames_with_box: int = 0
    boxes: int = 0


def _negative_sources(size, negative_videos: int, negative_frames_n: int, seed: int, chromium: bool,
                      extra: tuple[str, ...]) -> list[tuple[str, Iterator[np.ndarray]]]:
    """(kind, frames) of every face-free source: the synthetic kinds, Chromium's camera, --extra."""
    sources: list[tuple[str, Iterator[np.ndarray]]] = []
    for kind in NEGATIVE_KINDS:
        for v in range(negative_videos):
            sources.append((kind, negative_frames(kind, size, negative_frames_n, seed=seed * 1000 + v)))
    if chromium:
        grabbed = chromium_fake_camera(negative_frames_n * negative_videos, size)
        if grabbed:
            sources.append(("chromium_fake_camera", iter(grabbed)))
        else:
            log.info("Chromium or Playwright missing: its fake camera is not measured")
    for src in extra:
        sources.append((f"extra: {Path(src).name}", _extra_frames(src, max_frames=100_000)))
    return sources


@dataclass
class _Recall:
    """Placed faces found per threshold (all, and those of at least BIG_FACE_PX)."""

    tp: np.ndarray
    fp: np.ndarray
    big_tp: np.ndarray
    placed: int = 0
    big_placed: int = 0


def _face_recall(detectors, images, labels, *, face_videos: int, face_frames: int, size, face_px, seed: int,
                 bar) -> _Recall:
    """Every detector (one per threshold) on the same synthetic face videos, matched to the truth."""
    import tempfile

    from benchmarks.scenes.synthetic import make_scene_video, match_placed_faces, truth_frames

    k = len(detectors)
    out = _Recall(np.zeros(k, np.int64), np.zeros(k, np.int64), np.zeros(k, np.int64))
    with tempfile.TemporaryDirectory(prefix="fer-edge-threshold-") as tmp:
        for v in range(face_videos):
            truth = make_scene_video(Path(tmp) / f"faces_{v:03d}.avi", images, labels, n_frames=face_frames,
                                     size=size, faces_per_frame=(1, 4), face_px=face_px, seed=seed * 1000 + v,
                                     write_truth_file=False)
            for _, placed, frame in truth_frames(Path(tmp) / truth.video, truth):
                boxes = np.array([f.box for f in placed], np.float64).reshape(-1, 4)
                big = (boxes[:, 2] - boxes[:, 0]) >= BIG_FACE_PX
                out.placed += len(boxes)
                out.big_placed += int(big.sum())
                for j, det in enumerate(detectors):
                    found = det.detect(frame).xyxy.astype(np.float64)
                    ti, _, _ = match_placed_faces(boxes, found)
                    out.tp[j] += len(ti)
                    out.big_tp[j] += int(big[ti].sum())
                    out.fp[j] += len(found) - len(ti)
            (Path(tmp) / truth.video).unlink(missing_ok=True)
            if bar:
                bar.update(1)
    return out


def run_threshold_benchmark(*, thresholds=THRESHOLDS, data: str = DEFAULT_DATA, pipeline: PipelineConfig | None = None,
                            size: tuple[int, int] = (640, 480), negative_videos: int = 2, negative_frames_n: int = 60,
                            face_videos: int = 24, face_frames: int = 30, face_px: tuple[int, int] = (60, 300),
                            seed: int = 0, extra: tuple[str, ...] = (), max_fp_rate: float = DEFAULT_MAX_FP_RATE,
                            chromium: bool = True, faces=None, progress: bool = False) -> dict:
    """Measure face-free false positives and face recall per threshold; return the report dict.

    pipeline: whose detector to measure (default: PipelineConfig()), at each of `thresholds`.
    faces: optional (images (n, 48, 48) uint8, labels (n,)) instead of FER-2013 PublicTest.
    chromium: also Chromium's fake camera, when Chromium and Playwright are there.
    """
    t_start = time.perf_counter()
    pipeline = pipeline or PipelineConfig()
    thresholds = tuple(sorted(float(t) for t in thresholds))
    if faces is None:
        from train.data import load_fer2013

        split = load_fer2013(data).split("public")
        images, labels = split.images, np.asarray(split.labels, np.int64)
    else:
        images, labels = faces[0], np.asarray(faces[1], np.int64)
    # Every frame through the network: the curve is the network's, not what carrying repeats.
    detectors = [pipeline.replace(score_threshold=t, carry_frames=0).make_detector() for t in thresholds]
    neg: dict[str, list[_Counts]] = {}
    try:
        sources = _negative_sources(size, negative_videos, negative_frames_n, seed, chromium, extra)
        bar = _bar(progress, len(sources) + face_videos)
        for kind, frames in sources:
            counts = neg.setdefault(kind, [_Counts() for _ in thresholds])
            for frame in frames:
                for c, det in zip(counts, detectors):
                    n = len(det.detect(frame))
                    c.frames += 1
                    c.frames_with_box += n > 0
                    c.boxes += n
            if bar:
                bar.update(1)
        found = _face_recall(detectors, images, labels, face_videos=face_videos, face_frames=face_frames, size=size,
                             face_px=face_px, seed=seed, bar=bar)
        if bar:
            bar.close()
    finally:
        for det in detectors:
            det.close()

    rows = []
    for j, t in enumerate(thresholds):
        total = _Counts(sum(c[j].frames for c in neg.values()), sum(c[j].frames_with_box for c in neg.values()),
                        sum(c[j].boxes for c in neg.values()))
        rows.append({
            "threshold": t,
            "fp_frame_rate": rate(total.frames_with_box, total.frames),
            "fp_boxes_per_1000_frames": 1000.0 * total.boxes / max(total.frames, 1),
            "fp_frame_rate_by_kind": {kind: rate(c[j].frames_with_box, c[j].frames) for kind, c in neg.items()},
            "recall": rate(found.tp[j], found.placed),
            "recall_big": rate(found.big_tp[j], found.big_placed),
            "precision": rate(found.tp[j], found.tp[j] + found.fp[j]),
        })
    return {
        "rows": rows,
        "chosen": choose_threshold(rows, max_fp_rate),
        "settings": {"max_fp_rate": max_fp_rate, "detector": pipeline.detector.backend, "range": pipeline.detector.range,
                     "scan": pipeline.detector.scan,
                     "size": list(size), "negative_kinds": list(neg), "negative_videos_per_kind": negative_videos,
                     "negative_frames_per_video": negative_frames_n,
                     "face_free_frames": sum(c[0].frames for c in neg.values()),
                     "face_videos": face_videos, "face_frames_per_video": face_frames, "face_px": list(face_px),
                     "placed_faces": found.placed, "placed_faces_big": found.big_placed, "big_face_px": BIG_FACE_PX,
                     "faces_from": "FER-2013 PublicTest" if faces is None else "given faces", "seed": seed,
                     "iou": 0.3},
        "elapsed_s": time.perf_counter() - t_start,
    }


def choose_threshold(rows: list[dict], max_fp_rate: float) -> float | None:
    """The lowest threshold whose face-free false-positive frame rate is at most max_fp_rate."""
    for row in sorted(rows, key=lambda r: r["threshold"]):
        if row["fp_frame_rate"] is not None and row["fp_frame_rate"] <= max_fp_rate:
            return row["threshold"]
    return None


def _bar(progress: bool, total: int):
    if not progress:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc="threshold", unit="video")


# ---------------------------------------------------------------- outputs

def _p(v) -> str:
    return "-" if v is None else f"{100 * v:.1f}%"


def markdown(report: dict, command: str = "") -> str:
    s, rows, chosen = report["settings"], report["rows"], report["chosen"]
    kinds = s["negative_kinds"]
    lines = ["# Detector score threshold: face-free false positives and recall", ""]
    if command:
        lines += [f"Command: `{command}`", ""]
    scan = s.get("scan", "frame")
    what = ("the default scan: candidates from min(0.4, threshold), a followed face kept from the threshold, a "
            "new one when it scores >= max(0.75, threshold) or passes the keypoint check and the second look"
            if scan != "frame" else "one whole-frame pass, a box kept from the threshold")
    lines += [f"Detector {s['detector']} ({s['range']} range, scan {scan}: {what}), {s['size'][0]}x{s['size'][1]}. "
              "Face-free: "
              f"{s['face_free_frames']} frames of {len(kinds)} kinds. Faces: {s['placed_faces']} placed faces "
              f"({s['placed_faces_big']} of them >= {s['big_face_px']} px) from {s['faces_from']}, "
              f"{s['face_px'][0]}-{s['face_px'][1]} px, matched at IoU >= {s['iou']}.", "",
              "| threshold | face-free frames with a box | boxes / 1000 face-free frames | recall | recall, "
              f"faces >= {s['big_face_px']} px | precision on face videos |",
              "|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        mark = " **(rule)**" if r["threshold"] == chosen else ""
        lines.append(f"| {r['threshold']:.2f}{mark} | {_p(r['fp_frame_rate'])} | {r['fp_boxes_per_1000_frames']:.1f} | "
                     f"{_p(r['recall'])} | {_p(r['recall_big'])} | {_p(r['precision'])} |")
    lines += ["", "Face-free frames with a box, by kind:", "",
              "| threshold | " + " | ".join(kinds) + " |", "|---:|" + "---:|" * len(kinds)]
    for r in rows:
        lines.append(f"| {r['threshold']:.2f} | " + " | ".join(_p(r["fp_frame_rate_by_kind"][k]) for k in kinds) + " |")
    rule = (f"The rule's choice (**(rule)**) is the lowest threshold with face-free false positives in at most "
            f"{100 * s['max_fp_rate']:.1f} % of frames")
    lines += ["", (rule + f": **{chosen:.2f}**." if chosen is not None else rule + ": none qualifies."), ""]
    return "\n".join(lines)


def plot(report: dict, path: str | Path) -> Path | None:
    plt = pyplot(required=False)
    if plt is None:
        return None
    rows = report["rows"]
    t = [r["threshold"] for r in rows]
    fig, ax = plt.subplots(figsize=(7, 3.8))
    ax.plot(t, [100 * (r["fp_frame_rate"] or 0) for r in rows], "o-", color="tab:red",
            label="face-free frames with a box")
    ax.plot(t, [100 * (r["recall"] or 0) for r in rows], "s-", color="tab:blue", label="recall, all faces")
    ax.plot(t, [100 * (r["recall_big"] or 0) for r in rows], "^-", color="tab:green",
            label=f"recall, faces >= {report['settings']['big_face_px']} px")
    if report["chosen"] is not None:
        ax.axvline(report["chosen"], color="gray", ls="--", label=f"default {report['chosen']:.2f}")
    ax.set_xlabel("detector score threshold")
    ax.set_ylabel("%")
    ax.set_ylim(0, 100)
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def write_outputs(report: dict, out_dir: str | Path, command: str = "") -> dict[str, Path]:
    """OUT/threshold.json, threshold.md and threshold.png."""
    return write_report_files(out_dir, "threshold", {**report, "command": command}, markdown(report, command), plot)


# ---------------------------------------------------------------- CLI

def register(sub) -> None:
    """Add `threshold` to the `fer-edge bench` subparsers."""
    from edge.cli import HelpFormatter
    from edge.cli.pipeline_flags import add_pipeline_args

    p = sub.add_parser("threshold", formatter_class=HelpFormatter,
                       help="detector false positives on face-free video and recall, per score threshold",
                       description=__doc__.split("\n\n")[0].replace("\n", " "))
    p.add_argument("--out", default=DEFAULT_OUT, help="folder for threshold.json/.md/.png")
    p.add_argument("--data", default=DEFAULT_DATA, help="FER-2013 (its PublicTest faces are placed)")
    # The thresholds are swept, and every frame goes through the network.
    add_pipeline_args(p, groups=("detector",), skip=("--score-threshold", "--carry-frames"))
    p.add_argument("--negative-videos", type=int, default=2, help="face-free videos per kind")
    p.add_argument("--negative-frames", type=int, default=60, help="frames per face-free video")
    p.add_argument("--face-videos", type=int, default=24, help="videos with 1-4 faces each")
    p.add_argument("--face-frames", type=int, default=30, help="frames per face video")
    p.add_argument("--extra", action="append", default=[], metavar="SOURCE",
                   help="your own face-free footage: a video, image, folder or glob; repeatable (default: none)")
    p.add_argument("--chromium", choices=("auto", "off"), default="auto",
                   help="also Chromium's fake camera (auto: when /usr/bin/chromium and Playwright are installed)")
    p.add_argument("--max-fp-rate", type=float, default=DEFAULT_MAX_FP_RATE,
                   help="the default is the lowest threshold with at most this share of face-free frames boxed")
    p.add_argument("--seed", type=int, default=0, help="seed of the videos")
    p.add_argument("--thresholds", default=",".join(f"{t:g}" for t in THRESHOLDS),
                   help="comma-separated score thresholds to measure (the default scan: the score from which a "
                   "followed face is kept; a new one also needs a sure score or the second look)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_threshold)


def _cmd_threshold(args) -> int:
    import sys

    from edge.cli import CliError, command_line
    from edge.cli.pipeline_flags import config_from_args

    if min(args.negative_videos, args.negative_frames, args.face_videos, args.face_frames) < 1:
        raise CliError("--negative-videos, --negative-frames, --face-videos and --face-frames must be >= 1")
    try:
        thresholds = tuple(float(t) for t in args.thresholds.split(",") if t.strip())
    except ValueError:
        raise CliError(f"--thresholds {args.thresholds!r}: expected numbers, e.g. 0.5,0.6,0.7") from None
    if not thresholds or not all(0.0 < t < 1.0 for t in thresholds):
        raise CliError("--thresholds: every threshold must lie in (0, 1)")
    try:
        report = run_threshold_benchmark(thresholds=thresholds, data=args.data, pipeline=config_from_args(args),
                                         negative_videos=args.negative_videos,
                                         negative_frames_n=args.negative_frames, face_videos=args.face_videos,
                                         face_frames=args.face_frames, seed=args.seed, extra=tuple(args.extra),
                                         max_fp_rate=args.max_fp_rate, chromium=args.chromium == "auto",
                                         progress=not args.no_progress)
    except (FileNotFoundError, ValueError) as exc:
        raise CliError(str(exc)) from None
    command = command_line()
    paths = write_outputs(report, args.out, command)
    print(markdown(report, command))
    print("wrote " + ", ".join(str(p) for p in paths.values()), file=sys.stderr)
    return 0

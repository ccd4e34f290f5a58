"""Group scenes: synthetic 640x480, 720p and 1080p videos of 4-12 faces of 32-160 px, for every detector mode.

The ground truth for crowds (issue 10). Each video holds FER-2013 PrivateTest faces pasted
with `benchmarks.scenes.synthetic.paste_face` at known squares, with sides drawn evenly from the size bands
32-47, 48-63, 64-95 and 96-160 px, so that small faces are as well represented as large ones:

- about a quarter of the faces are partly hidden: an occluder (a shoulder or a head in front, a
  flat blob) covers 20-40 % of the square's side from below or from a side;
- about a quarter lie across an edge between two windows of the default tiling
  (`edge.detect.tiling.plan_scan` with 40 px faces), where a detector sees them cut in two;
- about a quarter appear only later in the video (between 20 % and 50 % of it), which measures
  how many frames a streaming detector needs to find a new face;
- the faces drift by a few pixels per frame, with sensor-like grain on every frame.

`fer-edge bench crowd` runs the real pipeline (smoothing off) over every video once per
detector mode and reports, in one table, per face-size band the recall and the agreement of the
label with the classifier on the face's original 48x48 crop, plus precision, false positives
per frame, recall of occluded and border faces, frames until a late face is found, and the
detector's time per frame. Truth files use `benchmarks.scenes.synthetic`'s format; the squares are
matched to detections with `benchmarks.scenes.synthetic.match_placed_faces` (IoU >= 0.3, or a detection
inside the square), as in the scene benchmark; recall at IoU >= 0.3 alone is kept for comparison.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from benchmarks.common.outputs import write_report_files
from benchmarks.common.samples import rate
from benchmarks.scenes.synthetic import (BACKGROUNDS, DEFAULT_FEATHER, MATCH_IOU, FaceTrack, SceneFace,
                                         SceneTruth, make_background, match_placed_faces, open_writer, paste_face,
                                         ring_px, truth_frames, truth_path, write_truth)
from edge.boxes import match_boxes
from edge.cli import HelpFormatter
from edge.labels import dataset_index
from edge.pipeline import PipelineConfig
from train.data import default_data_path

log = logging.getLogger(__name__)

BANDS = ((32, 48), (48, 64), (64, 96), (96, 161))  # placed square side, px, [lo, hi)
SIZES = ((1920, 1080), (1280, 720), (640, 480))
DEFAULT_OUT = "reports/crowd"
DEFAULT_DATA = default_data_path()
# Detector modes: name -> (PipelineConfig overrides, reset before every frame = a still image).
MODES: dict[str, tuple[dict, bool]] = {
    "frame, short range (the default up to 960 px before)": ({"scan": "frame", "range": "short"}, False),
    "frame, full range": ({"scan": "frame", "range": "full"}, False),
    "tiles, stream (the default)": ({"scan": "auto", "range": "short"}, False),
    "tiles, full scan every frame (stills)": ({"scan": "tiles", "range": "short"}, True),
}


def band_of(side: float) -> int:
    """Index into BANDS of a placed square side, or -1 outside them."""
    for k, (lo, hi) in enumerate(BANDS):
        if lo <= side < hi:
            return k
    return -1


def band_name(k: int) -> str:
    lo, hi = BANDS[k]
    return f"{lo}-{hi - 1} px"


def tile_edges(size: tuple[int, int], min_face_px: float = 40.0) -> tuple[list[float], list[float]]:
    """Frame x and y of the inner window edges of the default tiling's finest level."""
    from edge.detect.tiling import plan_scan

    w, h = size
    _, tiles = plan_scan(h, w, min_face_px)
    if not tiles:
        return [], []
    finest = max(t.scale for t in tiles)
    xs, ys = set(), set()
    for t in tiles:
        if t.scale != finest:
            continue
        for x in (t.x, t.x + t.width / t.scale):
            if 0 < x < w:
                xs.add(round(x, 1))
        for y in (t.y, t.y + t.height / t.scale):
            if 0 < y < h:
                ys.add(round(y, 1))
    return sorted(xs), sorted(ys)


@dataclass(frozen=True)
class _GroupFace:
    track: FaceTrack
    occluder: tuple[str, float, tuple[int, int, int]] | None  # (side, fraction of the square, BGR)
    border: bool
    appear: int  # first frame the face is in


def _overlaps(a, b, gap: int) -> bool:
    return not (a[2] + gap <= b[0] or b[2] + gap <= a[0] or a[3] + gap <= b[1] or b[3] + gap <= a[1])


def _place_group(rng: np.random.Generator, sides: list[int], size: tuple[int, int], pad: int,
                 border_flags: list[bool], edges: tuple[list[float], list[float]]
                 ) -> list[tuple[int, int, int, bool]] | None:
    """(x, y, side, on_border) per face, squares apart by their fade rings and drift; None if it fails."""
    w, h = size
    placed: list[tuple[int, int, int, bool]] = []
    xs, ys = edges
    for side, want_border in zip(sides, border_flags):
        ring = ring_px(side, DEFAULT_FEATHER)
        for _try in range(300):
            on_border = False
            if want_border and (xs or ys):
                # Centre within a third of the side from a window edge: the edge cuts the face.
                vertical = bool(xs) and (not ys or rng.random() < 0.5)
                line = float(rng.choice(xs if vertical else ys))
                off = rng.uniform(-side / 3.0, side / 3.0)
                if vertical:
                    x = int(round(line + off - side / 2.0))
                    y = int(rng.integers(pad + ring, h - pad - ring - side + 1))
                else:
                    y = int(round(line + off - side / 2.0))
                    x = int(rng.integers(pad + ring, w - pad - ring - side + 1))
                on_border = True
            else:
                x = int(rng.integers(pad + ring, w - pad - ring - side + 1))
                y = int(rng.integers(pad + ring, h - pad - ring - side + 1))
            if not (pad + ring <= x <= w - pad - ring - side and pad + ring <= y <= h - pad - ring - side):
                continue
            cand = (x, y, x + side, y + side)
            if all(not _overlaps(cand, (px, py, px + ps, py + ps),
                                 2 * pad + 2 + ring + ring_px(ps, DEFAULT_FEATHER))
                   for px, py, ps, _ in placed):
                placed.append((x, y, side, on_border))
                break
        else:
            return None
    return placed


def _make_group(rng: np.random.Generator, labels: np.ndarray, size: tuple[int, int], n_faces: int,
                face_px: tuple[int, int], n_frames: int, drift_px: float, occluded_frac: float,
                border_frac: float, late_frac: float) -> list[_GroupFace]:
    pad = int(math.ceil(drift_px))
    edges = tile_edges(size)
    for _attempt in range(50):
        bands = [b for b in BANDS if b[0] < face_px[1] and b[1] > face_px[0]]
        sides = []
        for _ in range(n_faces):
            lo, hi = bands[int(rng.integers(len(bands)))]
            sides.append(int(rng.integers(max(lo, face_px[0]), min(hi, face_px[1] + 1))))
        sides.sort(reverse=True)  # big ones first: they are the hard ones to fit
        border = [bool(rng.random() < border_frac) for _ in sides]
        squares = _place_group(rng, sides, size, pad, border, edges)
        if squares is not None:
            break
    else:
        raise ValueError(f"cannot place {n_faces} faces of {face_px} px in a {size[0]}x{size[1]} frame")
    srcs = rng.choice(len(labels), size=n_faces, replace=len(labels) < n_faces)
    faces = []
    for k, ((x, y, side, on_border), src) in enumerate(zip(squares, srcs)):
        periods = tuple(float(v) for v in rng.uniform(40, 120, 2))
        amps = tuple(float(v) * drift_px for v in rng.uniform(0.4, 1.0, 2))
        track = FaceTrack(id=k, src=int(src), label=int(labels[src]), x=x, y=y, side=side, angle=0.0, amp=amps,
                       period=periods, phase=tuple(float(v) for v in rng.uniform(0, 2 * math.pi, 2)))
        occluder = None
        if rng.random() < occluded_frac:
            color = tuple(int(c) for c in rng.integers(20, 235, 3))
            occluder = (str(rng.choice(("bottom", "left", "right"))), float(rng.uniform(0.2, 0.4)), color)
        appear = 0
        if n_frames > 4 and rng.random() < late_frac:
            appear = int(rng.integers(max(1, n_frames // 5), max(2, n_frames // 2) + 1))
        faces.append(_GroupFace(track=track, occluder=occluder, border=on_border, appear=appear))
    return faces


def _occlude(image_bgr: np.ndarray, box: tuple[int, int, int, int], occluder) -> None:
    """Draw a flat blob over part of the square, kept inside the square and its fade ring."""
    where, frac, color = occluder
    x1, y1, x2, y2 = box
    side = x2 - x1
    ring = ring_px(side, DEFAULT_FEATHER)
    h, w = image_bgr.shape[:2]
    rx1, ry1, rx2, ry2 = max(x1 - ring, 0), max(y1 - ring, 0), min(x2 + ring, w), min(y2 + ring, h)
    view = image_bgr[ry1:ry2, rx1:rx2]  # drawing on this view cannot reach another face
    depth = frac * side
    cx, cy = (x1 + x2) / 2.0 - rx1, (y1 + y2) / 2.0 - ry1
    if where == "bottom":  # a shoulder or a head in front, rising from below
        centre, axes = (cx, y2 - ry1 + side * 0.6 - depth), (side * 0.75, side * 0.6)
    elif where == "left":
        centre, axes = (x1 - rx1 - side * 0.6 + depth, cy), (side * 0.6, side * 0.8)
    else:
        centre, axes = (x2 - rx1 + side * 0.6 - depth, cy), (side * 0.6, side * 0.8)
    cv2.ellipse(view, (int(round(centre[0])), int(round(centre[1]))), (int(axes[0]), int(axes[1])),
                0.0, 0, 360, color, -1, cv2.LINE_AA)


def make_group_video(path: str | Path, faces: np.ndarray, labels: np.ndarray, *, size: tuple[int, int] = (1920, 1080),
                     n_faces: tuple[int, int] = (4, 12), face_px: tuple[int, int] = (32, 160), n_frames: int = 45,
                     fps: float = 15.0, seed: int = 0, background: str = "mixed", drift_px: float = 4.0,
                     noise_sigma: float = 2.0, occluded_frac: float = 0.25, border_frac: float = 0.25,
                     late_frac: float = 0.25, source: str = "") -> SceneTruth:
    """Write one group-scene video and its truth file beside it; return the truth.

    faces: (n, 48, 48) uint8 gray source crops; labels: (n,) ints in edge.labels order. Faces
    that appear late are absent from the truth of the frames before they appear.
    """
    if faces.ndim != 3 or faces.dtype != np.uint8 or len(faces) == 0 or len(labels) != len(faces):
        raise ValueError(f"faces must be (n, h, w) uint8 with one label each, got {faces.shape} {faces.dtype}")
    lo, hi = n_faces
    if not 1 <= lo <= hi:
        raise ValueError(f"n_faces must be 1 <= min <= max, got {n_faces}")
    rng = np.random.default_rng(seed)
    kind = str(rng.choice(BACKGROUNDS)) if background == "mixed" else background
    bg = make_background(kind, size, rng)
    n = int(rng.integers(lo, hi + 1))
    group = _make_group(rng, np.asarray(labels), size, n, face_px, n_frames, drift_px, occluded_frac,
                        border_frac, late_frac)
    writer, written = open_writer(path, fps, size)
    frames = []
    try:
        for i in range(n_frames):
            img = bg.copy()
            truth = []
            for g in group:
                if i < g.appear:
                    continue
                box = g.track.box_at(i)
                paste_face(img, faces[g.track.src], box)
                if g.occluder is not None:
                    _occlude(img, box, g.occluder)
                truth.append(SceneFace(id=g.track.id, box=box, label=g.track.label, src=g.track.src,
                                       occluded=g.occluder[1] if g.occluder else 0.0, border=g.border))
            if noise_sigma > 0:
                grain = rng.standard_normal(img.shape, dtype=np.float32) * np.float32(noise_sigma)
                img = np.clip(img + grain, 0, 255).astype(np.uint8)
            writer.write(img)
            frames.append(tuple(truth))
    finally:
        writer.release()
    truth = SceneTruth(size=tuple(size), fps=float(fps), seed=int(seed), background=kind, frames=tuple(frames),
                       source=source, video=written.name,
                       meta={"kind": "group", "drift_px": drift_px, "noise_sigma": noise_sigma,
                             "appear": {str(g.track.id): g.appear for g in group}})
    write_truth(truth_path(written), truth)
    return truth


# ---------------------------------------------------------------------------------------------- the benchmark


def _summary_ms(values) -> dict:
    a = np.asarray(values, np.float64)
    if a.size == 0:
        return {"p50": None, "p95": None, "mean": None}
    return {"p50": float(np.percentile(a, 50)), "p95": float(np.percentile(a, 95)), "mean": float(a.mean())}


def run_crowd_benchmark(*, out: str | Path = DEFAULT_OUT, data: str = DEFAULT_DATA, sizes=SIZES,
                        videos: int = 8, n_frames: int = 45, fps: float = 15.0, seed: int = 0,
                        n_faces: tuple[int, int] = (4, 12), face_px: tuple[int, int] = (32, 160),
                        modes: dict | None = None, pipeline: PipelineConfig | None = None, faces=None,
                        progress: bool = False) -> dict:
    """Make `videos` group videos per frame size, run every detector mode over them, report per band.

    pipeline: the pipeline to measure (default: PipelineConfig()); each mode sets its scan and
    range on it, smoothing off (a detector model given for short range is not used for full).
    faces: optional (images (n, 48, 48) uint8, labels (n,)) instead of FER-2013 PrivateTest.
    """
    from edge.pipeline import Pipeline

    t_start = time.perf_counter()
    pipeline = pipeline or PipelineConfig()
    modes = MODES if modes is None else modes
    if faces is None:
        from train.data import load_fer2013

        split = load_fer2013(data).split("private")
        images, labels = split.images, split.labels
        source = f"FER-2013 private ({data})"
    else:
        images, labels = faces
        source = "given faces"
    labels = np.asarray(labels, np.int64)
    video_dir = Path(out) / "videos"
    video_dir.mkdir(parents=True, exist_ok=True)
    truths: list[tuple[Path, SceneTruth]] = []
    for w, h in sizes:
        for v in range(videos):
            truth = make_group_video(video_dir / f"group_{w}x{h}_{v:02d}.mp4", images, labels, size=(w, h),
                                     n_faces=n_faces, face_px=face_px, n_frames=n_frames, fps=fps,
                                     seed=seed * 10_000 + v + 100 * h, source=source)
            truths.append((video_dir / truth.video, truth))
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(modes) * sum(t.n_frames for _, t in truths), unit="frame", desc="crowd")
    rows = []
    try:
        original_pred: dict[int, int] = {}
        for mode, (overrides, still) in modes.items():
            config = pipeline.replace(smooth=False, **overrides)
            if config.detector.range != "short":
                config = config.replace(model_path=None)
            with Pipeline.from_config(config) as pipe:
                to_ds = dataset_index(pipe.classifier.labels)
                for path, truth in truths:
                    rows.append(_run_video(pipe, path, truth, mode, still, to_ds, images, original_pred, bar))
    finally:
        if bar is not None:
            bar.close()
    report = _aggregate(rows, list(modes), sizes)
    report["settings"] = {"sizes": [list(s) for s in sizes], "videos_per_size": videos, "frames": n_frames,
                          "fps": fps, "seed": seed, "n_faces": list(n_faces), "face_px": list(face_px),
                          "bands": [list(b) for b in BANDS], "iou_threshold": MATCH_IOU, "source": source,
                          "modes": {m: {"pipeline": o, "reset_every_frame": s} for m, (o, s) in modes.items()},
                          "model": pipeline.emotion_model or "shipped", "min_face_px": pipeline.detector.min_face_px,
                          "tiles_per_frame": pipeline.detector.tiles_per_frame}
    report["elapsed_s"] = time.perf_counter() - t_start
    return report


def _run_video(pipe, path: Path, truth: SceneTruth, mode: str, still: bool, to_ds, images, original_pred, bar) -> dict:
    """One mode over one video: per placed face instance and per frame, in columns."""
    appear = {int(k): int(v) for k, v in truth.meta.get("appear", {}).items()}
    inst = {k: [] for k in ("band", "found", "found_iou", "agree", "occluded", "border", "face", "frame")}
    fp, detect_ms, total_ms = [], [], []
    pipe.reset()
    for i, placed, image in truth_frames(path, truth):
        if still:
            pipe.reset()
        result = pipe.process(image, index=i, t=i / truth.fps)
        detect_ms.append(result.timings.detect_ms)
        total_ms.append(result.timings.total_ms)
        tboxes = np.array([f.box for f in placed], np.float64).reshape(-1, 4)
        ti, di, _ = match_placed_faces(tboxes, result.faces.xyxy, MATCH_IOU)
        strict = set(match_boxes(tboxes, result.faces.xyxy, MATCH_IOU)[0].tolist())
        fp.append(len(result.faces) - len(ti))
        found = dict(zip(ti.tolist(), di.tolist()))
        preds = to_ds[result.label_index] if len(result.faces) else np.zeros(0, np.int64)
        for t, f in enumerate(placed):
            if f.src not in original_pred:
                probs = pipe.classifier.classify(images[f.src:f.src + 1])
                original_pred[f.src] = int(to_ds[int(np.argmax(probs[0]))])
            d = found.get(t)
            inst["band"].append(band_of(f.box[2] - f.box[0]))
            inst["found"].append(d is not None)
            inst["found_iou"].append(t in strict)
            inst["agree"].append(d is not None and int(preds[d]) == original_pred[f.src])
            inst["occluded"].append(f.occluded > 0)
            inst["border"].append(f.border)
            inst["face"].append(f.id)
            inst["frame"].append(i)
        if bar is not None:
            bar.update(1)
    # Frames from a late face's first frame to its first detection (None: never found).
    delays = []
    for fid, first in appear.items():
        if first <= 0:
            continue
        hits = [fr for fc, fr, ok in zip(inst["face"], inst["frame"], inst["found"]) if fc == fid and ok]
        delays.append(min(hits) - first if hits else None)
    return {"mode": mode, "size": list(truth.size), "video": str(path), "inst": inst, "fp": fp,
            "detect_ms": detect_ms, "total_ms": total_ms, "late_delays": delays}


def _aggregate(rows: list[dict], modes: list[str], sizes) -> dict:
    table = []
    for w, h in sizes:
        for mode in modes:
            sel = [r for r in rows if r["mode"] == mode and tuple(r["size"]) == (w, h)]
            if not sel:
                continue
            col = {k: np.concatenate([np.asarray(r["inst"][k]) for r in sel])
                   for k in ("band", "found", "found_iou", "agree", "occluded", "border")}
            found, agree, band = col["found"].astype(bool), col["agree"].astype(bool), col["band"]
            fp = int(sum(sum(r["fp"]) for r in sel))
            frames = int(sum(len(r["fp"]) for r in sel))
            tp = int(found.sum())
            bands = []
            for k in range(len(BANDS)):
                m = band == k
                bands.append({"band": band_name(k), "placed": int(m.sum()), "recall": rate(found[m].sum(), m.sum()),
                              "agreement": rate(agree[m].sum(), found[m].sum())})
            big = band >= 1
            delays = [d for r in sel for d in r["late_delays"]]
            found_delays = [d for d in delays if d is not None]
            occ, bord = col["occluded"].astype(bool), col["border"].astype(bool)
            table.append({
                "size": [w, h], "mode": mode, "frames": frames, "placed": int(len(found)), "tp": tp, "fp": fp,
                "recall": rate(tp, len(found)), "precision": rate(tp, tp + fp), "fp_per_frame": rate(fp, frames),
                "agreement": rate(agree.sum(), tp), "bands": bands,
                "recall_48_plus": rate(found[big].sum(), big.sum()),
                # IoU >= 0.3 with the square alone, without the inside-the-square rule (for comparison)
                "recall_48_plus_iou_only": rate(col["found_iou"].astype(bool)[big].sum(), big.sum()),
                "recall_32_48": rate(found[band == 0].sum(), (band == 0).sum()),
                "recall_occluded": rate(found[occ].sum(), occ.sum()), "occluded": int(occ.sum()),
                "recall_border": rate(found[bord].sum(), bord.sum()), "border": int(bord.sum()),
                "late_faces": len(delays), "late_never_found": sum(d is None for d in delays),
                "late_frames_to_find_median": float(np.median(found_delays)) if found_delays else None,
                "late_frames_to_find_max": int(max(found_delays)) if found_delays else None,
                "detect_ms": _summary_ms([v for r in sel for v in r["detect_ms"]]),
                "total_ms": _summary_ms([v for r in sel for v in r["total_ms"]]),
            })
    return {"table": table}


def _p(v) -> str:
    return "-" if v is None else f"{100 * v:.0f} %"


def _p1(v) -> str:
    return "-" if v is None else f"{100 * v:.1f} %"


def _ms(d: dict) -> str:
    return "-" if d["p50"] is None else f"{d['p50']:.0f} / {d['p95']:.0f}"


def targets(report: dict) -> dict:
    """The detection targets, checked on the default mode, per frame size: {"1920x1080": {...}}."""
    out = {}
    for r in report["table"]:
        if not r["mode"].startswith("tiles, stream"):
            continue
        out[f"{r['size'][0]}x{r['size'][1]}"] = {
            "recall_48_plus": r["recall_48_plus"], "recall_48_plus_met": (r["recall_48_plus"] or 0) >= 0.90,
            "recall_48_plus_iou_only": r["recall_48_plus_iou_only"],
            "recall_32_48": r["recall_32_48"], "recall_32_48_met": (r["recall_32_48"] or 0) >= 0.75,
            "precision": r["precision"], "precision_met": (r["precision"] or 0) >= 0.95}
    return out


def crowd_markdown(report: dict, command: str = "") -> str:
    """The one table: per frame size and detector mode, per band recall / agreement, and the rest."""
    s = report["settings"]
    lines = ["# Group scenes: detection and labels per face size, every detector mode", ""]
    if command:
        lines += [f"Command: `{command}`", ""]
    lines += [f"{s['videos_per_size']} videos per frame size x {s['frames']} frames, {s['n_faces'][0]}-{s['n_faces'][1]} "
              f"faces each (placed squares {s['face_px'][0]}-{s['face_px'][1]} px, from {s['source']}); about a quarter "
              "of the faces partly occluded, a quarter across a tile edge, a quarter appearing later. A face is found "
              f"when a detection overlaps its square by IoU >= {s['iou_threshold']}, or lies inside it and is at least "
              "a third of its side (a FER-2013 crop is not a face box: `benchmarks.scenes.synthetic.match_placed_faces`). "
              "Each band cell is recall / label "
              "agreement (the pipeline's label, smoothing off, against the classifier on the face's original 48x48 "
              "crop, over the found faces). Detect ms is per frame, p50 / p95.", ""]
    head = ["frame", "detector mode"] + [band_name(k) for k in range(len(BANDS))] + [
        "recall", "precision", "FP/frame", "occluded", "tile edge", "late face: frames to find (median / max, missed)",
        "detect ms"]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * 2 + "---:|" * (len(head) - 2)]
    for r in report["table"]:
        cells = [f"{r['size'][0]}x{r['size'][1]}", r["mode"]]
        cells += [f"{_p(b['recall'])} / {_p(b['agreement'])}" for b in r["bands"]]
        late = ("-" if r["late_frames_to_find_median"] is None else
                f"{r['late_frames_to_find_median']:.0f} / {r['late_frames_to_find_max']}") + \
            f", {r['late_never_found']} of {r['late_faces']}"
        cells += [_p(r["recall"]), _p(r["precision"]), f"{r['fp_per_frame']:.2f}", _p(r["recall_occluded"]),
                  _p(r["recall_border"]), late, _ms(r["detect_ms"])]
        lines.append("| " + " | ".join(cells) + " |")
    for size, tg in targets(report).items():
        lines += ["", f"Targets at {size}, default mode: recall >= 90 % on faces >= 48 px: "
                  f"{_p1(tg['recall_48_plus'])} ({'met' if tg['recall_48_plus_met'] else 'NOT met'}); >= 75 % at 32-48 px: "
                  f"{_p1(tg['recall_32_48'])} ({'met' if tg['recall_32_48_met'] else 'NOT met'}); precision >= 95 %: "
                  f"{_p1(tg['precision'])} ({'met' if tg['precision_met'] else 'NOT met'}). Recall on faces >= 48 px "
                  f"counting IoU >= {s['iou_threshold']} matches only: {_p1(tg['recall_48_plus_iou_only'])}."]
    lines.append("")
    return "\n".join(lines)


def write_crowd_report(report: dict, out_dir: str | Path, command: str = "") -> dict[str, Path]:
    """OUT/crowd.json and crowd.md."""
    return write_report_files(out_dir, "crowd", {**report, "targets": targets(report), "command": command},
                              crowd_markdown(report, command))


# ---------------------------------------------------------------------------------------------- CLI


def register(sub) -> None:
    """Add `crowd` to the `fer-edge bench` subparsers."""
    from edge.cli import int_pair
    from edge.cli.pipeline_flags import add_pipeline_args

    p = sub.add_parser("crowd", help="group scenes (720p, 1080p, 4-12 faces of 32-160 px) for every detector mode",
                       description="Write synthetic group videos with known faces (some occluded, some across tile "
                       "edges, some appearing late), run the real pipeline once per detector mode, and report recall "
                       "and label agreement per face-size band, precision and detector time in one table "
                       "(OUT/crowd.md and crowd.json). --fps-video also writes an 8-face 1080p video for "
                       "`fer-edge bench --source`.", formatter_class=HelpFormatter)
    p.add_argument("--out", default=DEFAULT_OUT, help="folder for crowd.json/.md and videos/")
    p.add_argument("--videos", type=int, default=8, help="videos per frame size")
    p.add_argument("--frames", type=int, default=45, help="frames per video")
    p.add_argument("--seed", type=int, default=0, help="random seed of the synthetic scenes (same seed, same scenes)")
    p.add_argument("--sizes", default=",".join(f"{w}x{h}" for w, h in SIZES), help="comma-separated frame sizes WxH")
    p.add_argument("--faces", type=int_pair, default=(4, 12), help="faces per video: N or MIN,MAX")
    p.add_argument("--face-px", type=int_pair, default=(32, 160), help="placed square side range MIN,MAX px")
    p.add_argument("--modes", default="all", help="comma-separated mode numbers (1-4, as in the table) or all")
    # The modes set the detector, range, scan; the threshold stays the runtime's.
    add_pipeline_args(p, groups=("detector", "model"), skip=("--detector", "--range", "--scan", "--score-threshold"))
    p.add_argument("--data", default=DEFAULT_DATA, help="fer2013.csv or a folder with train/ and test/")
    p.add_argument("--fps-video", action="store_true",
                   help="only write OUT/videos/crowd8_1920x1080.mp4 (8 faces of 40-100 px, 300 frames) and exit")
    p.set_defaults(func=_cmd_crowd)


def _cmd_crowd(args) -> int:
    from edge.cli import CliError, command_line
    from edge.cli.pipeline_flags import config_from_args
    from train.data import DataError

    try:
        sizes = tuple(tuple(int(v) for v in s.lower().split("x")) for s in args.sizes.split(",") if s.strip())
        if not sizes or any(len(s) != 2 or min(s) < 64 for s in sizes):
            raise ValueError
    except ValueError:
        raise CliError(f"--sizes {args.sizes!r}: expected WxH[,WxH...], e.g. 1920x1080,1280x720") from None
    names = list(MODES)
    if args.modes == "all":
        modes = MODES
    else:
        try:
            modes = {names[int(k) - 1]: MODES[names[int(k) - 1]] for k in args.modes.split(",")}
        except (ValueError, IndexError):
            raise CliError(f"--modes {args.modes!r}: expected numbers 1-{len(names)} or all") from None
    if args.videos < 1 or args.frames < 1:
        raise CliError("--videos and --frames must be >= 1")
    try:
        if args.fps_video:
            from train.data import load_fer2013

            split = load_fer2013(args.data).split("private")
            truth = make_group_video(Path(args.out) / "videos" / "crowd8_1920x1080.mp4", split.images, split.labels,
                                     size=(1920, 1080), n_faces=(8, 8), face_px=(40, 100), n_frames=300,
                                     seed=args.seed, late_frac=0.0, occluded_frac=0.0, border_frac=0.25,
                                     source=f"FER-2013 private ({args.data})")
            print(f"wrote {Path(args.out) / 'videos' / truth.video}")
            return 0
        report = run_crowd_benchmark(out=args.out, data=args.data, sizes=sizes, videos=args.videos,
                                     n_frames=args.frames, seed=args.seed, n_faces=args.faces, face_px=args.face_px,
                                     modes=modes, pipeline=config_from_args(args), progress=True)
    except (FileNotFoundError, ValueError, DataError) as exc:
        raise CliError(str(exc)) from None
    command = command_line()
    paths = write_crowd_report(report, args.out, command)
    print(crowd_markdown(report, command))
    print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0

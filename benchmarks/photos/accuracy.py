"""End-to-end accuracy on a labelled folder of real photographs, with the peer side by side.

    fer-edge bench photos FOLDER --out reports/photos   # FOLDER/<class>/*.jpg

The folder holds `<class>/<image>` with class folders named like the model's labels (angry,
disgust, fear, happy, neutral, sad, surprise). Every photo goes through the whole runtime
(detector, crop policy from the sidecar, equalization, int8 classifier); the largest face of
each photo counts, and a photo where no face is found counts as wrong. The peer `fer` runs on
the same photos in the same way (its own Haar detector and model, largest face).

`--negatives` also counts faces found in face-free crops of the same photos (the strips beside
each photo's face), for the default detector and a plain whole-frame pass.

`--calibrate` also searches the crop policy (margin, shift_y, align) that maximises macro recall
on one half of the photos (a fixed hash of each file name picks the half) and reports it on the
other half, so the chosen policy is never scored on the photos that chose it.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from benchmarks.common.outputs import pyplot, save_figure
from edge.labels import LABEL_INDEX, LABELS
from edge.pipeline import Pipeline, PipelineConfig
from edge.classify.preprocess import CropPolicy, crop_face, to_gray

log = logging.getLogger(__name__)

IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
DEFAULT_MARGINS = (0.0, 0.1, 0.2, 0.3, 0.4)
DEFAULT_SHIFTS = (-0.15, -0.1, -0.05, 0.0, 0.05)


class PhotosError(ValueError):
    """A folder that is not a labelled photo folder; the message says what is expected."""


@dataclass(frozen=True)
class LabelledPhotos:
    paths: tuple[Path, ...]
    labels: np.ndarray  # (n,) int64, indices into edge.labels.LABELS

    def __len__(self) -> int:
        return len(self.paths)

    def half(self, which: int) -> np.ndarray:
        """(n,) bool: the photos of half `which` (0 or 1), fixed by a hash of each file name."""
        h = np.array([hashlib.sha256(p.name.encode()).digest()[0] & 1 for p in self.paths])
        return h == which


def load_labelled_folder(root: str | Path) -> LabelledPhotos:
    """`root/<class>/<image>` -> paths and labels; unknown class folders are an error."""
    root = Path(root)
    if not root.is_dir():
        raise PhotosError(f"{root}: folder not found; pass a folder with one sub-folder per class "
                          f"({', '.join(LABELS)})")
    paths, labels = [], []
    for d in sorted(p for p in root.iterdir() if p.is_dir()):
        if d.name.lower() not in LABEL_INDEX:
            raise PhotosError(f"{d}: unknown class folder {d.name!r}; expected one of {', '.join(LABELS)}")
        for f in sorted(d.iterdir()):
            if f.suffix.lower() in IMAGE_EXTS:
                paths.append(f)
                labels.append(LABEL_INDEX[d.name.lower()])
    if not paths:
        raise PhotosError(f"{root}: no images in class sub-folders ({', '.join(LABELS)})")
    return LabelledPhotos(tuple(paths), np.asarray(labels, np.int64))


def scores(labels: np.ndarray, pred: np.ndarray, num_classes: int = len(LABELS)) -> dict:
    """pred: (n,) int64 with -1 where no face was found (counted as wrong)."""
    found = pred >= 0
    recall = {}
    for c in range(num_classes):
        m = labels == c
        if m.any():
            recall[LABELS[c]] = float(np.mean(pred[m] == c))
    confusion = np.zeros((num_classes, num_classes + 1), np.int64)  # last column: no face
    np.add.at(confusion, (labels, np.where(found, pred, num_classes)), 1)
    return {"n": int(len(labels)), "faces_found": float(found.mean()) if len(labels) else 0.0,
            "accuracy": float(np.mean(pred == labels)) if len(labels) else 0.0,
            "macro_recall": float(np.mean(list(recall.values()))) if recall else 0.0,
            "recall": recall, "support": {LABELS[c]: int((labels == c).sum()) for c in range(num_classes)},
            "confusion": confusion.tolist()}


def _read(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise PhotosError(f"{path}: not a readable image")
    return image  # (H, W, 3) uint8 BGR


def _largest(xyxy: np.ndarray) -> int:
    area = (xyxy[:, 2] - xyxy[:, 0]) * (xyxy[:, 3] - xyxy[:, 1])
    return int(np.argmax(area))


def predict_fer_edge(photos: LabelledPhotos, pipeline: Pipeline, progress: bool = True) -> np.ndarray:
    """Whole-runtime prediction per photo: (n,) int64, -1 where no face was found."""
    pred = np.full(len(photos), -1, np.int64)
    for i, path in enumerate(tqdm(photos.paths, desc="fer-edge", unit="photo", disable=not progress)):
        pipeline.reset()
        r = pipeline.process(_read(path))
        if len(r.faces):
            pred[i] = int(np.argmax(r.probs[_largest(r.faces.xyxy)]))
    return pred


def predict_peer(photos: LabelledPhotos, peer, progress: bool = True) -> np.ndarray:
    """The peer's own detect_emotions, largest face: (n,) int64, -1 where no face was found."""
    pred = np.full(len(photos), -1, np.int64)
    for i, path in enumerate(tqdm(photos.paths, desc="peer fer", unit="photo", disable=not progress)):
        found = peer.detect_emotions(_read(path))
        if found:
            boxes = np.array([[x, y, x + w, y + h] for x, y, w, h in (f["box"] for f in found)])
            emotions = found[_largest(boxes)]["emotions"]
            pred[i] = LABEL_INDEX[max(emotions, key=emotions.get)]
    return pred


def calibrate_crop(photos: LabelledPhotos, pipeline: Pipeline, margins=DEFAULT_MARGINS, shifts=DEFAULT_SHIFTS,
                   progress: bool = True) -> dict:
    """Grid-search the crop policy on half 0 by macro recall; report every cell on both halves."""
    det = pipeline.detector
    clf = pipeline.classifier
    spec = clf.spec
    faces = []  # per photo: (gray, box, keypoints) of the largest face, or None
    for path in tqdm(photos.paths, desc="detect", unit="photo", disable=not progress):
        image = _read(path)
        det.reset()  # unrelated stills
        f = det.detect(image)
        if len(f):
            k = _largest(f.xyxy)
            faces.append((to_gray(image), f.xyxy[k], f.keypoints[k]))
        else:
            faces.append(None)
    fit, held = photos.half(0), photos.half(1)
    cells = []
    grid = [(m, s, a) for a in (False, True) for m in margins for s in shifts]
    for margin, shift, align in tqdm(grid, desc="crop grid", unit="policy", disable=not progress):
        policy = CropPolicy(margin=float(margin), shift_y=float(shift), align=bool(align))
        idx = [i for i, f in enumerate(faces) if f is not None]
        crops = np.stack([crop_face(faces[i][0], faces[i][1], spec, policy, faces[i][2]) for i in idx])
        pred = np.full(len(photos), -1, np.int64)
        pred[idx] = np.argmax(clf.classify(crops), axis=1)
        cells.append({"policy": policy.to_json(),
                      "fit": scores(photos.labels[fit], pred[fit]),
                      "held_out": scores(photos.labels[held], pred[held])})
    best = max(cells, key=lambda c: (c["fit"]["macro_recall"], c["fit"]["accuracy"]))
    current = pipeline.card.crop.to_json()
    return {"chosen": best["policy"], "chosen_fit": best["fit"], "chosen_held_out": best["held_out"],
            "current": current, "n_fit": int(fit.sum()), "n_held_out": int(held.sum()),
            "rule": "best macro recall on the fit half (ties: accuracy); reported on the held-out half",
            "cells": cells}


# Compared with the default detector on the negative crops: one whole-frame pass at these thresholds
# (0.65: the whole-frame default before confirmation; 0.5: MediaPipe's usual one).
NEGATIVE_BASELINES = (0.65, 0.5)
NEGATIVE_MIN_SIDE = 32  # px: narrower strips beside a face hold too little to look at


def negative_crops(image_bgr: np.ndarray, face_xyxy, margin: float = 0.1,
                   min_side: int = NEGATIVE_MIN_SIDE) -> list[np.ndarray]:
    """The parts of a photo that do not overlap its face: the strips left of, right of, above and
    below the face box grown by `margin` of its side, at least min_side px across. The photos are
    framed close, so these are mostly hair, forehead, ears, shoulders and background."""
    h, w = image_bgr.shape[:2]
    x1, y1, x2, y2 = (float(v) for v in face_xyxy)
    m = margin * max(x2 - x1, y2 - y1)
    x1, y1 = max(0, int(x1 - m)), max(0, int(y1 - m))
    x2, y2 = min(w, int(np.ceil(x2 + m))), min(h, int(np.ceil(y2 + m)))
    strips = [image_bgr[:, :x1], image_bgr[:, x2:], image_bgr[:y1, :], image_bgr[y2:, :]]
    return [np.ascontiguousarray(c) for c in strips if min(c.shape[:2]) >= min_side]


def run_negatives(photos: LabelledPhotos, config: PipelineConfig, progress: bool = True) -> dict:
    """Face-free crops of real photos (`negative_crops` around each photo's face, which the
    default detector locates; photos without a face are skipped): the share of crops in which
    each detector finds a face, the default one and NEGATIVE_BASELINES' whole-frame passes."""
    detectors = {"default": config.make_detector()}
    for t in NEGATIVE_BASELINES:
        detectors[f"whole frame, threshold {t:g}"] = config.replace(scan="frame", score_threshold=t,
                                                            carry_frames=0).make_detector()
    crops_n, hits, skipped = 0, {k: 0 for k in detectors}, 0
    examples: dict[str, list[str]] = {k: [] for k in detectors}
    try:
        for path in tqdm(photos.paths, desc="negatives", unit="photo", disable=not progress):
            image = _read(path)
            finder = detectors["default"]
            finder.reset()
            faces = finder.detect(image)
            if not len(faces):
                skipped += 1
                continue
            for k, crop in enumerate(negative_crops(image, faces.xyxy[_largest(faces.xyxy)])):
                crops_n += 1
                for name, det in detectors.items():
                    det.reset()  # every crop is a still of its own
                    if len(det.detect(crop)):
                        hits[name] += 1
                        if len(examples[name]) < 10:
                            examples[name].append(f"{path.parent.name}/{path.name} strip {k}")
    finally:
        for det in detectors.values():
            det.close()
    return {"crops": crops_n, "photos_without_face": skipped, "min_side_px": NEGATIVE_MIN_SIDE,
            "rule": "strips beside the face box grown by a tenth of its side; a crop with any box counts",
            "with_face": {k: v for k, v in hits.items()},
            "rate": {k: (v / crops_n if crops_n else None) for k, v in hits.items()}, "examples": examples}


def run_photos(folder: str | Path, config: PipelineConfig, *, peer: str = "auto", calibrate: bool = False,
               negatives: bool = False, progress: bool = True) -> dict:
    """Score fer-edge (and the peer, when installed or asked for) on a labelled photo folder."""
    from benchmarks.common import peer as peer_mod

    photos = load_labelled_folder(folder)
    config = config.replace(smooth=False)  # one still per photo: no tracking, no smoothing
    report = {"folder": str(folder), "n": len(photos), "rule": "largest face per photo; no face found = wrong"}
    with Pipeline.from_config(config) as pipe:
        report["model"] = str(pipe.classifier.model_path.name)
        report["crop"] = pipe.card.crop.to_json()
        report["tta"] = config.tta
        pred = predict_fer_edge(photos, pipe, progress)
        report["fer_edge"] = scores(photos.labels, pred)
        for h in (0, 1):
            m = photos.half(h)
            report["fer_edge"][f"half{h}"] = scores(photos.labels[m], pred[m])
        if calibrate:
            report["calibration"] = calibrate_crop(photos, pipe, progress=progress)
    if negatives:
        report["negatives"] = run_negatives(photos, config, progress)
    if peer == "on" or (peer == "auto" and peer_mod.available()):
        p = peer_mod.FerPeer()
        ppred = predict_peer(photos, p, progress)
        report["peer"] = scores(photos.labels, ppred) | {"name": p.name}
        for h in (0, 1):
            m = photos.half(h)
            report["peer"][f"half{h}"] = scores(photos.labels[m], ppred[m])
    return report


def _pct(v: float) -> str:
    return f"{100 * v:.1f} %"


def markdown(report: dict) -> str:
    sides = [("fer-edge", report["fer_edge"])] + ([("peer " + report["peer"]["name"], report["peer"])]
                                                  if "peer" in report else [])
    lines = [f"# Real photos, end to end: {report['folder']} ({report['n']} photos)", "",
             f"Rule: {report['rule']}. Model {report['model']}, crop {json.dumps(report['crop'])}"
             + (f", TTA {report['tta']}" if report.get("tta", "none") != "none" else "") + ".", "",
             "| | faces found | accuracy | macro recall | " + " | ".join(LABELS) + " |",
             "|---|---:|---:|---:|" + "---:|" * len(LABELS)]
    for name, s in sides:
        rec = " | ".join(_pct(s["recall"][c]) if c in s["recall"] else "-" for c in LABELS)
        lines.append(f"| {name} | {_pct(s['faces_found'])} | {_pct(s['accuracy'])} | "
                     f"{_pct(s['macro_recall'])} | {rec} |")
    support = report["fer_edge"]["support"]
    lines.append("| photos per class | | | | " + " | ".join(str(support[c]) for c in LABELS) + " |")
    if "calibration" in report:
        c = report["calibration"]
        lines += ["", "## Crop-policy calibration", "",
                  f"Grid over margin x shift_y x align, chosen on half 0 ({c['n_fit']} photos) by {c['rule']}.", "",
                  "| policy | fit half: accuracy | fit: macro recall | held-out half: accuracy | held-out: macro recall |",
                  "|---|---:|---:|---:|---:|"]
        top = sorted(c["cells"], key=lambda x: -x["fit"]["macro_recall"])[:8]
        for cell in top:
            lines.append(f"| {json.dumps(cell['policy'])} | {_pct(cell['fit']['accuracy'])} | "
                         f"{_pct(cell['fit']['macro_recall'])} | {_pct(cell['held_out']['accuracy'])} | "
                         f"{_pct(cell['held_out']['macro_recall'])} |")
        lines += ["", f"Chosen: {json.dumps(c['chosen'])} (the model's current policy: {json.dumps(c['current'])})."]
    if "negatives" in report:
        n = report["negatives"]
        lines += ["", "## Face-free crops of the same photos", "",
                  f"{n['crops']} crops ({n['rule']}; at least {n['min_side_px']} px across; "
                  f"{n['photos_without_face']} photos without a face skipped). Share of crops in which a face is found:",
                  "", "| detector | crops with a face |", "|---|---:|"]
        for name, r in n["rate"].items():
            lines.append(f"| {name} | {n['with_face'][name]} ({_pct(r or 0.0)}) |")
    return "\n".join(lines) + "\n"


def write_outputs(report: dict, out_dir: str | Path) -> dict[str, Path]:
    """photos.json, photos.md and photos.png (per-class recall, fer-edge beside the peer)."""
    from edge.atomic import atomic_write_text

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "photos.json", "md": out / "photos.md", "png": out / "photos.png"}
    atomic_write_text(paths["json"], json.dumps(report, indent=1))
    atomic_write_text(paths["md"], markdown(report))
    _plot(report, paths["png"])
    return paths


def _plot(report: dict, png: Path) -> None:
    plt = pyplot()

    sides = [("fer-edge", report["fer_edge"], "#1f77b4")]
    if "peer" in report:
        sides.append(("peer fer", report["peer"], "#999999"))
    names = list(LABELS) + ["macro", "accuracy"]
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(9, 3.8))
    width = 0.8 / len(sides)
    for k, (name, s, colour) in enumerate(sides):
        vals = [s["recall"].get(c, np.nan) for c in LABELS] + [s["macro_recall"], s["accuracy"]]
        ax.bar(x + (k - (len(sides) - 1) / 2) * width, vals, width, label=name, color=colour)
    support = report["fer_edge"]["support"]
    ax.set_xticks(x, [f"{c}\n(n={support[c]})" for c in LABELS] + ["macro\nrecall", "accuracy"])
    ax.set_ylim(0, 1)
    ax.set_ylabel("recall")
    ax.set_title(f"End to end on {Path(report['folder']).name}: {report['n']} photos, largest face, miss = wrong")
    ax.grid(axis="y", alpha=0.3)
    ax.legend()
    save_figure(fig, png, dpi=110)

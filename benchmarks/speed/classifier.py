"""The classifier micro-benchmark: ms per face for each model variant, threads, batched or not.

    report = bench_classifier(find_variants("models"), crops, labels)

Every `.tflite` in the models folder that has its `.json` sidecar is a variant (float32,
float16, dynamic, int8: whatever `fer-edge convert` wrote). Each is timed through
`EmotionClassifier.classify` (normalise, quantize, invoke, dequantize) on real FER-2013
PrivateTest crops, for 1, 2 and 4 interpreter threads, one face per call and a batch of 4 per
call; and its PrivateTest accuracy is measured once. The peer's classifier (fer's TFLite model,
fed the same crops its way) goes in the same table when `fer` is installed.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

import numpy as np

from benchmarks.speed.pipeline import SCHEMA
from benchmarks.common.samples import summarize
from edge.machine import machine_info
from train.data import DATA_ENV

log = logging.getLogger(__name__)

QUANT_ORDER = ("float32", "float16", "dynamic", "int8")


def load_private_test(fer_dir: str | os.PathLike, limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """FER-2013 PrivateTest crops: (n, 48, 48) uint8 gray and (n,) int64 labels (edge.labels order).

    Reads only test/<class>/PrivateTest_*.jpg of the folder layout (fast); a fer2013.csv goes
    through train.data.load_fer2013. `limit` keeps the first n files in sorted order.
    """
    import cv2

    from edge.labels import LABEL_INDEX

    root = Path(fer_dir)
    if root.is_file() or (root / "fer2013.csv").is_file():
        from train.data import load_fer2013

        split = load_fer2013(root).private
        n = len(split) if limit is None else min(limit, len(split))
        return split.images[:n], split.labels[:n]
    test = root / "test"
    if not test.is_dir():
        raise FileNotFoundError(f"{root}: expected fer2013.csv or test/<class>/PrivateTest_*.jpg "
                                f"(--data PATH or ${DATA_ENV})")
    files = sorted((p for d in test.iterdir() if d.is_dir() and d.name in LABEL_INDEX
                    for p in d.glob("PrivateTest_*")), key=lambda p: p.name)
    if limit is not None:
        # Spread over the classes rather than the first files of one: sorted by name is mixed.
        files = files[:limit]
    images, labels = [], []
    for p in files:
        img = cv2.imread(str(p), cv2.IMREAD_GRAYSCALE)
        if img is None:
            log.warning("%s: cannot decode, skipped", p)
            continue
        if img.shape != (48, 48):
            img = cv2.resize(img, (48, 48), interpolation=cv2.INTER_AREA)
        images.append(img)
        labels.append(LABEL_INDEX[p.parent.name])
    if not images:
        raise FileNotFoundError(f"{test}: no PrivateTest_*.jpg files found")
    return np.stack(images), np.asarray(labels, np.int64)


def find_variants(models_dir: str | os.PathLike) -> list[Path]:
    """The .tflite files in `models_dir` that have a sidecar, float32 -> int8 order."""
    from edge.classify.sidecar import SidecarError, load_sidecar

    d = Path(models_dir)
    if not d.is_dir():
        raise FileNotFoundError(f"{d}: no such models folder")
    found = []
    for p in sorted(d.glob("*.tflite")):
        try:
            q = load_sidecar(p).quantization
        except SidecarError as exc:
            log.warning("%s skipped: %s", p.name, exc)
            continue
        found.append((QUANT_ORDER.index(q) if q in QUANT_ORDER else len(QUANT_ORDER), p.name, p))
    return [p for *_, p in sorted(found)]


def _time_calls(fn, inputs: list, iters: int, warmup: int) -> np.ndarray:
    """ms per call of fn(inputs[i % len(inputs)])."""
    for i in range(warmup):
        fn(inputs[i % len(inputs)])
    out = np.empty(iters, np.float64)
    for i in range(iters):
        x = inputs[i % len(inputs)]
        t0 = time.perf_counter()
        fn(x)
        out[i] = (time.perf_counter() - t0) * 1e3
    return out


def bench_variant(model_path: Path, crops: np.ndarray, *, threads=(1, 2, 4), batch_size: int = 4,
                  iters: int = 200, warmup: int = 20) -> dict:
    """One model: ms per face for each threads x {single: 1 face per call, batch: batch_size per call}."""
    from edge.classify.classifier import EmotionClassifier

    singles = [crops[i:i + 1] for i in range(len(crops))]
    batches = [np.take(crops, range(i, i + batch_size), axis=0, mode="wrap")
               for i in range(0, max(len(crops), batch_size), batch_size)]
    timings = []
    card = None
    for k in threads:
        for mode, inputs in (("single", singles), ("batch", batches)):
            clf = EmotionClassifier(model_path, num_threads=k, batch=True)
            card = clf.card
            ms = _time_calls(clf.classify, inputs, iters, warmup)
            per = len(inputs[0])
            st = summarize(ms / per)
            timings.append({"threads": int(k), "mode": mode, "batch": int(per),
                            "ms_per_face": st["mean"], "ms_per_face_p50": st["p50"],
                            "ms_per_face_p95": st["p95"], "calls": int(iters)})
    return {"model": str(model_path), "name": model_path.stem, "quantization": card.quantization,
            "size_kb": round(model_path.stat().st_size / 1024, 1),
            "provisional": "PROVISIONAL" in json.dumps(card.metrics).upper(), "timings": timings}


def variant_accuracy(model_path: Path, crops: np.ndarray, labels: np.ndarray, threads: int | None = None) -> float:
    """Top-1 accuracy of one model on crops (n, 48, 48) uint8 with labels in edge.labels order."""
    from edge.classify.classifier import EmotionClassifier
    from edge.labels import LABELS

    clf = EmotionClassifier(model_path, num_threads=threads, batch=True)
    preds = np.concatenate([np.argmax(clf.classify(crops[i:i + 256]), axis=1) for i in range(0, len(crops), 256)])
    # The sidecar's label order may differ from edge.labels: compare by name.
    names = np.asarray(clf.labels)[preds]
    return float((names == np.asarray(LABELS)[labels]).mean())


def bench_classifier(model_paths: list[Path], crops: np.ndarray, labels: np.ndarray | None = None, *,
                     threads=(1, 2, 4), batch_size: int = 4, iters: int = 200, warmup: int = 20,
                     timing_crops: int = 256, peer: str = "auto", progress: bool = True) -> dict:
    """All variants (and the peer's classifier per `peer`: auto | on | off); returns the report.

    crops: (n, 48, 48) uint8 gray; labels: (n,) ints or None. Timings cycle through the first
    `timing_crops` crops; accuracy uses all of them.
    """
    from tqdm import tqdm

    if not model_paths:
        raise FileNotFoundError("no model variants to benchmark (a .tflite with its .json sidecar)")
    timing_set = crops[:timing_crops]
    variants = []
    for p in tqdm(model_paths, desc="classifier variants", unit="model", disable=not progress, leave=False):
        v = bench_variant(Path(p), timing_set, threads=threads, batch_size=batch_size, iters=iters, warmup=warmup)
        if labels is not None:
            v["accuracy"] = variant_accuracy(Path(p), crops, labels, threads=max(threads))
            v["n_eval"] = int(len(labels))
        variants.append(v)
    report = {"schema": SCHEMA, "kind": "classifier", "machine": machine_info(), "threads": list(threads),
              "batch_size": batch_size, "iters": iters, "n_crops": int(len(crops)), "variants": variants,
              "peer": None}
    if peer != "off":
        from benchmarks.common import peer as peer_mod

        if peer_mod.available():
            report["peer"] = peer_mod.peer_accuracy(crops, labels if labels is not None
                                                    else np.zeros(len(crops), np.int64),
                                                    timing_faces=min(iters, len(crops)))
            if labels is None:
                report["peer"].pop("accuracy")
        elif peer == "on":
            raise ImportError(peer_mod.install_hint())
    return report


def markdown(report: dict) -> str:
    """Variants table: accuracy, size and ms/face for each threads x mode."""
    cols = [(t, m) for t in report["threads"] for m in ("single", "batch")]
    per_call = f"{report['batch_size']}/call"
    head = "| model | quantization | size KB | PrivateTest acc | " + " | ".join(
        f"{t} thr {'1/call' if m == 'single' else per_call}" for t, m in cols) + " |"
    lines = ["### Classifier: ms per face on FER-2013 PrivateTest crops", "", head,
             "|" + " --- |" * 4 + " ---: |" * len(cols)]
    for v in report["variants"]:
        by = {(t["threads"], t["mode"]): t["ms_per_face"] for t in v["timings"]}
        acc = f"{v['accuracy'] * 100:.1f} %" if "accuracy" in v else "n/a"
        if v.get("provisional"):
            acc += " (provisional model)"
        lines.append(f"| {v['name']} | {v['quantization']} | {v['size_kb']:.0f} | {acc} | "
                     + " | ".join(f"{by.get(c, float('nan')):.3f}" for c in cols) + " |")
    p = report.get("peer")
    if p:
        acc = f"{p['accuracy'] * 100:.1f} %" if "accuracy" in p else "n/a"
        lines.append(f"| peer: {p['name']} | its TFLite, 64x64 float input | {p['size_kb']:.0f} | {acc} | "
                     + " | ".join(f"{p['ms_per_face']:.3f}" if c == (report['threads'][0], 'single') else "-"
                                  for c in cols) + " |")
        lines += ["", "The peer runs with its own defaults (TFLite's default thread count, one face per "
                      "invoke); its time is in the first 1/call column."]
    n = report["n_crops"]
    lines += ["", f"Accuracy over {n} PrivateTest crops fed straight to each model (no detector)."]
    return "\n".join(lines) + "\n"


def write_outputs(report: dict, json_path: str | os.PathLike) -> dict[str, Path]:
    json_path = Path(json_path)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(report, indent=2) + "\n")
    md = json_path.with_suffix(".md")
    md.write_text(markdown(report))
    return {"json": json_path, "markdown": md}

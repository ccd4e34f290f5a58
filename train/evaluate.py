"""Evaluate a model on FER-2013 PublicTest or PrivateTest: accuracy, per-class scores, confusion.

Works for a .keras model (needs TensorFlow) and for a .tflite model with its sidecar (LiteRT).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.atomic import atomic_path, atomic_write_text
from edge.labels import LABELS
from edge.classify.preprocess import InputSpec, to_model_input
from train.data import FerData


class EvalError(Exception):
    """A model that cannot be evaluated; the message says why."""


@dataclass(frozen=True)
class EvalReport:
    data: dict  # the JSON report
    text: str  # the printed table


def predict_probs(model_path: str | Path, images: np.ndarray, tta: str = "none",
                  batch_size: int = 256) -> np.ndarray:
    """(n, 48, 48) uint8 gray -> (n, 7) float32 probabilities; `tta="flip"` averages the mirror."""
    p = Path(model_path)
    if not p.is_file():
        raise EvalError(f"{p}: model file not found")
    if p.suffix == ".tflite":
        from edge.classify.classifier import EmotionClassifier
        from edge.classify.sidecar import SidecarError

        try:
            clf = EmotionClassifier(p)
        except SidecarError as exc:
            raise EvalError(str(exc)) from None
        run = lambda imgs: np.concatenate(  # noqa: E731
            [clf.classify(imgs[i:i + batch_size]) for i in range(0, len(imgs), batch_size)])
    elif p.suffix in (".keras", ".h5"):
        from train.meta import MetaError, input_spec_of, load_train_meta

        try:
            meta = load_train_meta(p)
        except MetaError as exc:
            raise EvalError(str(exc)) from None
        spec: InputSpec = input_spec_of(meta)
        from train.nets import load_float32, load_weights_float32

        if p.name.endswith(".weights.h5"):  # weights only: the metadata names the architecture
            model = load_weights_float32(p, meta["arch"], (spec.height, spec.width, spec.channels))
        else:
            model = load_float32(p)
        run = lambda imgs: np.asarray(  # noqa: E731
            model.predict(to_model_input(imgs, spec), batch_size=batch_size, verbose=0), np.float32)
    else:
        raise EvalError(f"{p}: unknown model type {p.suffix!r}; use a .keras or a .tflite with its .json")
    probs = run(images)
    if tta == "flip":
        probs = (probs + run(np.ascontiguousarray(images[:, :, ::-1]))) / 2.0
    return probs


def accuracy_report(y_true: np.ndarray, probs: np.ndarray, labels=LABELS) -> dict:
    """Accuracy, n, per-class precision/recall/F1 and the confusion matrix (rows = truth)."""
    k = len(labels)
    y_pred = np.argmax(probs, axis=1)
    counts = np.zeros((k, k), np.int64)
    np.add.at(counts, (y_true, y_pred), 1)
    per_class = {}
    for i, name in enumerate(labels):
        tp = counts[i, i]
        prec = tp / max(counts[:, i].sum(), 1)
        rec = tp / max(counts[i].sum(), 1)
        f1 = 2 * prec * rec / max(prec + rec, 1e-12)
        per_class[name] = {"precision": round(float(prec), 4), "recall": round(float(rec), 4),
                           "f1": round(float(f1), 4), "support": int(counts[i].sum())}
    rows = counts.sum(axis=1, keepdims=True)
    norm = counts / np.maximum(rows, 1)
    return {
        "accuracy": round(float((y_pred == y_true).mean()), 4) if len(y_true) else 0.0,
        "n": int(len(y_true)),
        "per_class": per_class,
        "macro_f1": round(float(np.mean([c["f1"] for c in per_class.values()])), 4),
        "confusion_row_normalised": np.round(norm, 4).tolist(),
        "confusion_counts": counts.tolist(),
        "labels": list(labels),
    }


def ferplus_report(split_data, probs: np.ndarray, votes_path: str | Path) -> dict:
    """Accuracy against the FER+ majority labels of the same images, where FER+ has one."""
    from train.ferplus import load_votes, votes_for

    majority = votes_for(split_data, load_votes(votes_path)).majority()
    has = majority >= 0
    rep = accuracy_report(majority[has], probs[has])
    return {"votes": str(votes_path), "accuracy": rep["accuracy"], "n": rep["n"],
            "macro_f1": rep["macro_f1"], "of_split": int(len(majority)),
            "per_class_recall": {k: v["recall"] for k, v in rep["per_class"].items()}}


def evaluate_model(model_path: str | Path, data: FerData, split: str, tta: str = "none",
                   json_out: Path | None = None, votes: str | Path | None = None) -> EvalReport:
    """Evaluate on `split` ("public" or "private"); with `tta="flip"` a separate TTA figure.

    With a FER+ `votes` file (by default the one beside the data, when it exists) the report also
    scores the same images against their FER+ majority labels.
    """
    from train.ferplus import VotesError, default_votes_path

    if split not in ("public", "private"):
        raise EvalError(f"split must be public or private, not {split!r}")
    s = data.split(split)
    probs = predict_probs(model_path, s.images)
    report = accuracy_report(s.labels, probs)
    report = {"model": str(model_path), "split": split,
              "split_name": {"public": "PublicTest", "private": "PrivateTest"}[split], **report}
    votes_path = Path(votes) if votes else Path(default_votes_path(data.source))
    if votes or votes_path.is_file():
        try:
            report["ferplus_majority"] = ferplus_report(s, probs, votes_path)
        except VotesError as exc:
            raise EvalError(str(exc)) from None
    if tta == "flip":
        tta_probs = predict_probs(model_path, s.images, tta="flip")
        tta_rep = accuracy_report(s.labels, tta_probs)
        report["tta_flip"] = {"accuracy": tta_rep["accuracy"], "macro_f1": tta_rep["macro_f1"]}
        if "ferplus_majority" in report:
            report["tta_flip"]["ferplus_majority_accuracy"] = ferplus_report(s, tta_probs, votes_path)["accuracy"]
    text = format_report(report)
    if json_out is not None:
        json_out = Path(json_out)
        json_out.parent.mkdir(parents=True, exist_ok=True)
        png = json_out.with_suffix(".png")
        plot_confusion(np.asarray(report["confusion_row_normalised"]), report["labels"],
                       f"{Path(model_path).name} on {report['split_name']} "
                       f"(accuracy {report['accuracy']:.2%}, n={report['n']})", png)
        report["confusion_png"] = png.name
        atomic_write_text(json_out, json.dumps(report, indent=1) + "\n", mode=None)
    return EvalReport(report, text)


def format_report(r: dict) -> str:
    lines = [f"{r['model']} on {r['split_name']}: accuracy {r['accuracy']:.4f} (n={r['n']}), "
             f"macro F1 {r['macro_f1']:.4f}"]
    if "ferplus_majority" in r:
        f = r["ferplus_majority"]
        lines.append(f"  against the FER+ majority labels of the same images: accuracy {f['accuracy']:.4f} "
                     f"(n={f['n']} of {f['of_split']} have a majority), macro F1 {f['macro_f1']:.4f}")
    if "tta_flip" in r:
        lines.append(f"  with flip TTA (reported separately): accuracy {r['tta_flip']['accuracy']:.4f}"
                     + (f", FER+ majority {r['tta_flip']['ferplus_majority_accuracy']:.4f}"
                        if "ferplus_majority_accuracy" in r["tta_flip"] else ""))
    lines.append(f"  {'class':<9} {'prec':>6} {'recall':>6} {'f1':>6} {'n':>5}")
    for name, c in r["per_class"].items():
        lines.append(f"  {name:<9} {c['precision']:>6.3f} {c['recall']:>6.3f} {c['f1']:>6.3f} {c['support']:>5}")
    lines.append("  confusion (rows: truth, row-normalised): " + " ".join(l[:3] for l in r["labels"]))
    for name, row in zip(r["labels"], r["confusion_row_normalised"]):
        lines.append(f"  {name:<9} " + " ".join(f"{v:4.2f}" for v in row))
    return "\n".join(lines)


def plot_confusion(norm: np.ndarray, labels, title: str, png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 5.6))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set(xlabel="predicted", ylabel="true", title=title)
    for i in range(norm.shape[0]):
        for j in range(norm.shape[1]):
            ax.text(j, i, f"{norm[i, j]:.2f}", ha="center", va="center", fontsize=8,
                    color="white" if norm[i, j] > 0.5 else "black")
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    with atomic_path(png) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)

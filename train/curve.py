"""A table and a plot of training runs that differ in one setting, from the reports they wrote.

Each run folder holds what `fer-edge train` wrote (train_meta.json), what `fer-edge evaluate
... --split public --json RUN/eval_public.json` wrote, and optionally what `fer-edge bench photos
FOLDER --model RUN/tfl/emotion_int8.tflite --out RUN/wild` wrote. Only PublicTest and the
real photos are read: PrivateTest never drives a choice.

    python -m train.curve --out models/edge/ferplus RUN_DIR...
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

from edge.atomic import atomic_path, atomic_write_text
from edge.labels import LABELS


@dataclass(frozen=True)
class CurvePoint:
    run: str
    ferplus_weight: float
    epochs: int
    public_accuracy: float  # original FER-2013 labels
    public_ferplus_accuracy: float  # FER+ majority labels of the same images (nan if absent)
    wild: dict  # faces_found, accuracy, macro_recall, recall{class} (empty without a photos report)


def read_point(run: Path) -> CurvePoint:
    meta = json.loads((run / "train_meta.json").read_text())
    ev = json.loads((run / "eval_public.json").read_text())
    wild = {}
    photos = run / "wild" / "photos.json"
    if photos.is_file():
        ours = json.loads(photos.read_text())["fer_edge"]
        wild = {k: ours[k] for k in ("faces_found", "accuracy", "macro_recall", "recall")}
    weight = float((meta.get("config") or {}).get("ferplus_weight", 0.0) or 0.0)
    return CurvePoint(run=run.name, ferplus_weight=weight, epochs=int(meta.get("epochs_run", 0)),
                      public_accuracy=float(ev["accuracy"]),
                      public_ferplus_accuracy=float(ev.get("ferplus_majority", {}).get("accuracy", float("nan"))),
                      wild=wild)


def curve_markdown(points: list[CurvePoint], command: str) -> str:
    head = ("| run | FER+ weight | epochs | PublicTest, original labels | PublicTest, FER+ majority | "
            "wild: faces found | wild: accuracy | wild: macro recall | "
            + " | ".join(f"wild: {c}" for c in LABELS) + " |")
    lines = [head, "|" + "---|" * (8 + len(LABELS))]
    for p in points:
        w = p.wild
        cells = [p.run, f"{p.ferplus_weight:.2f}", str(p.epochs), f"{p.public_accuracy:.2%}",
                 f"{p.public_ferplus_accuracy:.2%}"]
        if w:
            cells += [f"{w['faces_found']:.1%}", f"{w['accuracy']:.1%}", f"{w['macro_recall']:.1%}"]
            cells += [f"{w['recall'][c]:.0%}" for c in LABELS]
        else:
            cells += ["—"] * (3 + len(LABELS))
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", f"Regenerate: `{command}`", ""]
    return "\n".join(lines)


def plot_curve(points: list[CurvePoint], png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pts = sorted(points, key=lambda p: p.ferplus_weight)
    x = [p.ferplus_weight for p in pts]
    fig, ax = plt.subplots(figsize=(6.4, 4.8))
    ax.plot(x, [p.public_accuracy for p in pts], "o-", label="PublicTest, original labels")
    ax.plot(x, [p.public_ferplus_accuracy for p in pts], "s-", label="PublicTest, FER+ majority")
    if all(p.wild for p in pts):
        ax.plot(x, [p.wild["accuracy"] for p in pts], "^--", label="real photos: accuracy")
        ax.plot(x, [p.wild["macro_recall"] for p in pts], "v--", label="real photos: macro recall")
    ax.set(xlabel="FER+ vote share in the training target", ylabel="accuracy / recall",
           title="Training targets: original label vs FER+ votes")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2)
    fig.tight_layout()
    with atomic_path(png) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m train.curve", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", type=Path, help="run folders (see above)")
    ap.add_argument("--out", type=Path, required=True, help="folder for curve.json, curve.md, curve.png")
    args = ap.parse_args(argv)
    missing = [str(r) for r in args.runs if not (r / "eval_public.json").is_file()]
    if missing:
        ap.error(f"no eval_public.json in {', '.join(missing)}: run `fer-edge evaluate RUN/last.keras "
                 "--split public --json RUN/eval_public.json` first")
    points = [read_point(r) for r in args.runs]
    args.out.mkdir(parents=True, exist_ok=True)
    command = "python -m train.curve --out " + str(args.out) + " " + " ".join(str(r) for r in args.runs)
    atomic_write_text(args.out / "curve.json", json.dumps([p.__dict__ for p in points], indent=1) + "\n", mode=None)
    atomic_write_text(args.out / "curve.md", curve_markdown(points, command), mode=None)
    plot_curve(points, args.out / "curve.png")
    print(curve_markdown(points, command))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Check every converted variant against its Keras source on FER-2013 PublicTest and PrivateTest.

For each .tflite: accuracy, top-1 agreement with the Keras model and the largest probability
difference, file size, and latency on one thread with LiteRT: the median of single-face
calls on real crops (`invoke_ms`: the interpreter alone; `face_ms`: the runtime's whole
`EmotionClassifier.classify` of one crop, preprocessing and (de)quantization included).
The Keras model itself is the reference row.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from edge.atomic import atomic_write_text
from edge.machine import machine_info
from edge.classify.preprocess import InputSpec, to_model_input
from edge.classify.sidecar import SidecarError
from train.data import FerData
from train.evaluate import accuracy_report

from convert.errors import ConvertError

log = logging.getLogger(__name__)

SPLIT_NAMES = {"public": "PublicTest", "private": "PrivateTest"}
EVAL_BATCH = 256  # bounded memory: a whole split at once would need GBs of activations


@dataclass(frozen=True)
class SplitScore:
    n: int
    accuracy: float
    macro_f1: float
    agreement: float | None = None  # top-1 agreement with the Keras model
    max_abs_prob_diff: float | None = None  # largest |p_tflite - p_keras| over all faces/classes
    mean_abs_prob_diff: float | None = None
    input_clipped: float | None = None  # int8 input: fraction of pixels outside the calibrated range


@dataclass(frozen=True)
class KerasReference:
    """The Keras model's own predictions: the row every variant is compared with."""

    path: Path
    size_bytes: int
    probs: dict  # split -> (n, 7) float32
    scores: dict  # split -> SplitScore


@dataclass(frozen=True)
class VariantReport:
    path: Path
    quantization: str
    size_bytes: int
    input_dtype: str  # float32 | int8: what the runtime feeds the interpreter
    scores: dict  # split -> SplitScore
    invoke_ms_median: float | None = None  # interpreter.invoke() of one face, 1 thread, wall clock
    invoke_cpu_ms_median: float | None = None  # the same, CPU time of the calling thread
    face_ms_median: float | None = None  # EmotionClassifier.classify of one crop, 1 thread
    timing_faces: int = 0

    def sidecar_metrics(self, ref: KerasReference | None, data_source: str) -> dict:
        """What goes into the sidecar's `metrics`."""
        m: dict = {}
        for split, s in self.scores.items():
            m[f"{split}_accuracy"] = s.accuracy
            m[f"{split}_macro_f1"] = s.macro_f1
            if s.agreement is not None:
                m[f"{split}_agreement_with_keras"] = s.agreement
            if s.input_clipped is not None:
                m[f"{split}_input_clipped"] = s.input_clipped
            if ref is not None and split in ref.scores:
                m[f"keras_{split}_accuracy"] = ref.scores[split].accuracy
        m["eval_data"] = data_source
        m["splits"] = {k: SPLIT_NAMES[k] for k in self.scores}
        return m


@dataclass
class VerifyReport:
    keras: KerasReference | None
    variants: list = field(default_factory=list)  # VariantReport
    data_source: str = ""
    command: str = ""

    def to_json(self) -> dict:
        def score(s: SplitScore) -> dict:
            return {k: v for k, v in asdict(s).items() if v is not None}

        rows = []
        for v in self.variants:
            row = {"file": v.path.name, "quantization": v.quantization, "size_bytes": v.size_bytes,
                   "input_dtype": v.input_dtype,
                   "splits": {k: score(s) for k, s in v.scores.items()},
                   "invoke_ms_median_1thread": v.invoke_ms_median,
                   "invoke_cpu_ms_median_1thread": v.invoke_cpu_ms_median,
                   "face_ms_median_1thread": v.face_ms_median, "timing_faces": v.timing_faces}
            if self.keras is not None:
                row["drop_vs_keras_points"] = {
                    k: round(100 * (self.keras.scores[k].accuracy - s.accuracy), 2)
                    for k, s in v.scores.items() if k in self.keras.scores}
            rows.append(row)
        out = {"data": self.data_source, "command": self.command, "variants": rows,
               "machine": machine_info(), "summary": self.summary()}
        if self.keras is not None:
            out["keras"] = {"file": self.keras.path.name, "size_bytes": self.keras.size_bytes,
                            "splits": {k: score(s) for k, s in self.keras.scores.items()}}
        return out

    def summary(self) -> dict:
        """The headline figures: int8's accuracy drop vs Keras, int8 vs float32 size and speed."""
        by = {v.quantization: v for v in self.variants}
        out: dict = {}
        i8, f32 = by.get("int8"), by.get("float32")
        if i8 is not None and self.keras is not None:
            out["int8_drop_vs_keras_points"] = {
                k: round(100 * (self.keras.scores[k].accuracy - s.accuracy), 2)
                for k, s in i8.scores.items() if k in self.keras.scores}
        if i8 is not None and f32 is not None:
            out["int8_over_float32_size"] = round(i8.size_bytes / f32.size_bytes, 3)
            if i8.invoke_ms_median and f32.invoke_ms_median:
                # > 1 means int8 is faster.
                out["float32_over_int8_invoke_ms"] = round(f32.invoke_ms_median / i8.invoke_ms_median, 2)
            if i8.invoke_cpu_ms_median and f32.invoke_cpu_ms_median:
                out["float32_over_int8_invoke_cpu_ms"] = round(
                    f32.invoke_cpu_ms_median / i8.invoke_cpu_ms_median, 2)
        return out

    def markdown(self) -> str:
        splits = [k for k in SPLIT_NAMES if any(k in v.scores for v in self.variants)
                  or (self.keras is not None and k in self.keras.scores)]
        head = ["model", "quant", "size"] + [f"{SPLIT_NAMES[k]} acc" for k in splits]
        head += [f"drop vs Keras {SPLIT_NAMES[k]} (pts)" for k in splits]
        head += [f"agree w/ Keras {SPLIT_NAMES[k]}" for k in splits]
        head += ["max abs Δp", "invoke ms (1 thr, median)", "invoke CPU ms (median)",
                 "ms/face classify (1 thr, median)"]
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]

        def cell(x, fmt):
            return "—" if x is None else format(x, fmt)

        if self.keras is not None:
            k = self.keras
            row = [k.path.name, "Keras (reference)", _size(k.size_bytes)]
            row += [cell(k.scores[s].accuracy if s in k.scores else None, ".4f") for s in splits]
            row += ["0.00"] * len(splits) + ["1.000"] * len(splits) + ["—"] * 4
            lines.append("| " + " | ".join(row) + " |")
        for v in self.variants:
            row = [v.path.name, v.quantization, _size(v.size_bytes)]
            row += [cell(v.scores[s].accuracy if s in v.scores else None, ".4f") for s in splits]
            for s in splits:
                drop = None
                if self.keras is not None and s in v.scores and s in self.keras.scores:
                    drop = 100 * (self.keras.scores[s].accuracy - v.scores[s].accuracy)
                row.append(cell(drop, "+.2f"))
            row += [cell(v.scores[s].agreement if s in v.scores else None, ".3f") for s in splits]
            diffs = [v.scores[s].max_abs_prob_diff for s in splits
                     if s in v.scores and v.scores[s].max_abs_prob_diff is not None]
            row += [cell(max(diffs) if diffs else None, ".3f"), cell(v.invoke_ms_median, ".2f"),
                    cell(v.invoke_cpu_ms_median, ".2f"), cell(v.face_ms_median, ".2f")]
            lines.append("| " + " | ".join(row) + " |")
        text = "\n".join(lines)
        notes = []
        s = self.summary()
        if "int8_drop_vs_keras_points" in s:
            notes.append("int8 accuracy drop vs Keras: " + ", ".join(
                f"{d:+.2f} points on {SPLIT_NAMES[k]}" for k, d in s["int8_drop_vs_keras_points"].items()))
        if "int8_over_float32_size" in s:
            notes.append(f"int8 file is {s['int8_over_float32_size']:.2f}x the float32 file")
        for key, what in (("float32_over_int8_invoke_ms", "wall-clock"), ("float32_over_int8_invoke_cpu_ms", "CPU")):
            if key in s:
                r = s[key]
                notes.append(f"int8 invoke is {r:.2f}x {'faster' if r >= 1 else 'slower'} than float32 "
                             f"here ({what} median; float32 ms / int8 ms)" if abs(r - 1) >= 0.05 else
                             f"int8 and float32 invoke take about the same {what} time here ({r:.2f}x)")
        for v in self.variants:
            clip = {k: sc.input_clipped for k, sc in v.scores.items() if sc.input_clipped}
            if clip:
                notes.append(f"{v.quantization} input range (calibrated on Training) clips " + ", ".join(
                    f"{100 * c:.2f}% of {SPLIT_NAMES[k]} pixels" for k, c in clip.items()))
        t = next((v.timing_faces for v in self.variants if v.timing_faces), 0)
        mi = machine_info()
        if t:
            notes.append(f"latency: median of {t} single-face calls on real PublicTest crops, "
                         f"1 thread, LiteRT {mi['litert']} on {mi['cpu']} ({mi['machine']}, "
                         f"{mi['cores']} cores); CPU ms is the calling thread's CPU time, which a "
                         "busy machine inflates less than wall-clock ms")
        notes.append("drop = Keras accuracy minus variant accuracy, in percentage points "
                     "(positive: the variant is worse)")
        if self.data_source:
            notes.append(f"data: {self.data_source}")
        if self.command:
            notes.append(f"command: `{self.command}`")
        return text + "\n\n" + "\n".join(f"- {n}" for n in notes) + "\n"


def tqdm_disable(progress: bool | None) -> bool | None:
    """progress None: bars only on a terminal (tqdm's own rule); True/False: always/never."""
    return None if progress is None else not progress


def _size(n: int) -> str:
    return f"{n / 1e6:.2f} MB" if n >= 1e6 else f"{n / 1e3:.1f} kB"


def _score(labels: np.ndarray, probs: np.ndarray, ref_probs: np.ndarray | None,
           input_clipped: float | None = None) -> SplitScore:
    rep = accuracy_report(labels, probs)
    if ref_probs is None:
        return SplitScore(n=len(labels), accuracy=rep["accuracy"], macro_f1=rep["macro_f1"],
                          input_clipped=input_clipped)
    diff = np.abs(probs - ref_probs)
    return SplitScore(
        n=len(labels), accuracy=rep["accuracy"], macro_f1=rep["macro_f1"], input_clipped=input_clipped,
        agreement=round(float(np.mean(probs.argmax(1) == ref_probs.argmax(1))), 4),
        max_abs_prob_diff=round(float(diff.max()), 4), mean_abs_prob_diff=round(float(diff.mean()), 5))


def eval_splits(data: FerData) -> list[str]:
    """The held-out splits that have images (a CSV may lack one)."""
    return [s for s in SPLIT_NAMES if len(data.split(s))]


def keras_reference(model, keras_path: str | Path, spec: InputSpec, data: FerData) -> KerasReference:
    """Run the Keras model over PublicTest and PrivateTest once; every variant is compared with it."""
    probs, scores = {}, {}
    for split in eval_splits(data):
        s = data.split(split)
        p = np.asarray(model.predict(to_model_input(s.images, spec), batch_size=EVAL_BATCH, verbose=0),
                       np.float32)
        probs[split] = p
        scores[split] = _score(s.labels, p, None)
    return KerasReference(Path(keras_path), os.path.getsize(keras_path), probs, scores)


def _classifier(path: Path, num_threads: int | None, batch: bool = True):
    from edge.classify.classifier import EmotionClassifier

    try:
        return EmotionClassifier(path, num_threads=num_threads, batch=batch)
    except SidecarError as exc:
        raise ConvertError(f"{path}: the runtime refuses this model: {exc}") from None
    except (FileNotFoundError, ValueError, RuntimeError) as exc:
        raise ConvertError(f"{path}: LiteRT cannot load it: {exc}") from None


def time_single_faces(path: Path, crops: np.ndarray, warmup: int = 10,
                      progress: bool | None = None) -> tuple[float, float, float]:
    """Median ms of (invoke() wall, invoke() thread CPU, EmotionClassifier.classify wall), one face.

    One thread: LiteRT then runs the graph on the calling thread, so its CPU time is the work.

    crops: (n, 48, 48) uint8 real face crops, each timed once, one at a time.
    """
    from edge.interpreter import load_interpreter

    clf = _classifier(path, num_threads=1, batch=False)
    interp = load_interpreter(path, num_threads=1)
    inp = interp.get_input_details()[0]
    x = clf.quantize_input(to_model_input(crops, clf.spec))  # (n, H, W, 1), the interpreter's dtype
    for i in range(min(warmup, len(crops))):
        clf.classify(crops[i:i + 1])
        interp.set_tensor(inp["index"], x[i:i + 1])
        interp.invoke()
    invoke_ms, invoke_cpu_ms, face_ms = [], [], []
    for i in tqdm(range(len(crops)), desc=f"time {path.name}", unit="face", leave=False,
                  disable=tqdm_disable(progress)):
        interp.set_tensor(inp["index"], x[i:i + 1])
        c0, t0 = time.thread_time(), time.perf_counter()
        interp.invoke()
        t1, c1 = time.perf_counter(), time.thread_time()
        invoke_ms.append((t1 - t0) * 1e3)
        invoke_cpu_ms.append((c1 - c0) * 1e3)
        t0 = time.perf_counter()
        clf.classify(crops[i:i + 1])
        face_ms.append((time.perf_counter() - t0) * 1e3)
    def med(v):
        return round(float(np.median(v)), 3)

    return med(invoke_ms), med(invoke_cpu_ms), med(face_ms)


def evaluate_variant(path: str | Path, data: FerData, ref: KerasReference | None = None,
                     num_threads: int | None = None, timing_faces: int = 0,
                     progress: bool | None = None) -> VariantReport:
    """Score one .tflite (with its sidecar) on the held-out splits; time it if `timing_faces`."""
    path = Path(path)
    clf = _classifier(path, num_threads=num_threads)
    scores = {}
    for split in eval_splits(data):
        s = data.split(split)
        probs = np.concatenate([clf.classify(s.images[i:i + EVAL_BATCH])
                                for i in range(0, len(s), EVAL_BATCH)])
        # Calibration fixed the input range from Training images; held-out faces outside
        # it are clipped, which shows up here before it shows up as lost accuracy.
        clipped = clf.input_clipped(to_model_input(s.images, clf.spec))
        clipped = None if clipped is None else round(clipped, 5)
        scores[split] = _score(s.labels, probs, None if ref is None else ref.probs.get(split), clipped)
    invoke_ms = invoke_cpu_ms = face_ms = None
    n_timed = 0
    if timing_faces > 0:
        held = data.public if len(data.public) else data.private
        crops = held.images[:timing_faces]
        spec = clf.spec
        if crops.shape[1:3] != (spec.height, spec.width):
            # The runtime's crop_face cuts faces straight to the model's size.
            crops = np.stack([cv2.resize(c, (spec.width, spec.height), interpolation=cv2.INTER_AREA)
                              for c in crops])
        n_timed = len(crops)
        if n_timed:
            invoke_ms, invoke_cpu_ms, face_ms = time_single_faces(path, crops, progress=progress)
    return VariantReport(path=path, quantization=clf.card.quantization, size_bytes=path.stat().st_size,
                         input_dtype=np.dtype(clf.input_dtype).name, scores=scores,
                         invoke_ms_median=invoke_ms, invoke_cpu_ms_median=invoke_cpu_ms,
                         face_ms_median=face_ms, timing_faces=n_timed)


def write_report(report: VerifyReport, out_dir: str | Path, stem: str) -> tuple[Path, Path]:
    """DIR/<stem>.md and DIR/<stem>.json, each written whole."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    md, js = out / f"{stem}.md", out / f"{stem}.json"
    for path, text in ((md, report.markdown()), (js, json.dumps(report.to_json(), indent=1) + "\n")):
        atomic_write_text(path, text, mode=None)
    return md, js


def check_source(path: Path, keras_sha256: str) -> None:
    """Refuse a variant the runtime would refuse, or one converted from another Keras model."""
    card = _classifier(path, num_threads=1).card  # sidecar vs .tflite: input shape, label count
    if card.source_sha256 and card.source_sha256 != keras_sha256:
        raise ConvertError(f"{path}: its sidecar says it was converted from a model with sha256 "
                           f"{card.source_sha256[:12]}..., not this .keras ({keras_sha256[:12]}...); "
                           "pass the model it came from, or convert again")

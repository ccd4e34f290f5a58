"""Keras -> TFLite in four flavours, each written with its sidecar.

`float32` is the plain conversion; `float16` stores weights as float16; `dynamic` stores
weights as int8 and quantizes activations on the fly; `int8` is full-integer (int8 input and
output tensors, every op int8), calibrated on a stratified, deterministic sample of FER-2013
Training images fed through `edge.classify.preprocess.to_model_input`, the function training and the
runtime call on every crop (histogram equalization included), so calibration sees the input
distribution the device sees.

TensorFlow is imported inside the functions that need it: `fer-edge --help` stays fast.
"""

from __future__ import annotations

import json
import logging
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from edge.atomic import DEFAULT_MODE, atomic_path, atomic_write_bytes, atomic_write_text, sha256_file
from edge.labels import LABELS
from edge.classify.preprocess import CropPolicy, InputSpec, to_model_input
from edge.classify.sidecar import ModelCard, load_sidecar, sidecar_path
from train.data import Split

from convert.errors import ConvertError
from convert.verify import VerifyReport, check_source, evaluate_variant, keras_reference, tqdm_disable

log = logging.getLogger(__name__)

QUANT_MODES = ("float32", "float16", "dynamic", "int8")
MIN_REP_SIZE = 500  # calibration images for int8; fewer gives noisy activation ranges
REP_SEED = 2013


@dataclass(frozen=True)
class SourceModel:
    """A trained .keras file and what its training recorded about it (normalisation, labels)."""

    path: Path
    sha256: str
    spec: InputSpec  # size, equalization, from_fer and the training's mean/std
    labels: tuple[str, ...]
    crop: CropPolicy  # the training's crop policy (FER framing)
    meta_path: Path
    arch: str = ""
    params: int = 0
    best_public_accuracy: float | None = None


@dataclass(frozen=True)
class Variant:
    """One written .tflite and its sidecar."""

    quantization: str
    path: Path  # DIR/<name>_<quantization>.tflite
    card: ModelCard
    size_bytes: int

    @property
    def sidecar(self) -> Path:
        return sidecar_path(self.path)


def read_source(keras_path: str | Path) -> SourceModel:
    """Check the file is a Keras model and find its training metadata; no TensorFlow needed.

    The metadata is `<stem>.json` beside the model, else `train_meta.json` in its folder
    (what `fer-edge train` writes); without it the input normalisation is unknown.
    """
    from train.meta import MetaError, find_train_meta

    p = Path(keras_path)
    if not p.is_file():
        raise ConvertError(f"{p}: model file not found; pass the .keras checkpoint that "
                           "`fer-edge train` wrote (e.g. runs/edge/best.keras)")
    # A .keras file is a zip holding config.json and the weights.
    if p.suffix != ".keras" or not zipfile.is_zipfile(p):
        raise ConvertError(f"{p}: not a Keras model; expected a .keras file (Keras 3 zip format) "
                           "as saved by `fer-edge train`")
    with zipfile.ZipFile(p) as z:
        if "config.json" not in z.namelist():
            raise ConvertError(f"{p}: not a Keras model: the .keras zip has no config.json")
    try:
        meta_path = find_train_meta(p)
    except MetaError as exc:
        raise ConvertError(str(exc)) from None
    try:
        meta = json.loads(meta_path.read_text())
        spec = InputSpec.from_json(meta["input"])
        if not {"height", "width", "mean", "std"} <= set(meta["input"]):
            raise KeyError("input.height/width/mean/std")
    except json.JSONDecodeError as exc:
        raise ConvertError(f"{meta_path}: not valid JSON ({exc})") from None
    except (KeyError, TypeError, ValueError) as exc:
        raise ConvertError(f"{meta_path}: not training metadata: needs input.height, input.width, "
                           f"input.mean and input.std (problem: {exc!r})") from None
    labels = tuple(meta.get("labels") or LABELS)
    crop = CropPolicy.from_json(meta.get("crop") or {})
    best = meta.get("best_public_accuracy")
    return SourceModel(path=p, sha256=sha256_file(p), spec=spec, labels=labels, crop=crop,
                       meta_path=meta_path, arch=str(meta.get("arch", "")),
                       params=int(meta.get("params", 0) or 0),
                       best_public_accuracy=float(best) if best is not None else None)


def load_keras_model(source: SourceModel):
    """Load the Keras model and check it against its metadata: input size, 7 output classes."""
    from train.nets import load_float32

    try:
        model = load_float32(source.path)
    except Exception as exc:  # Keras raises many types for a broken or foreign file
        raise ConvertError(f"{source.path}: Keras could not load it: {exc}") from None
    in_shape = tuple(model.input_shape)
    out_shape = tuple(model.output_shape)
    if len(out_shape) != 2 or out_shape[-1] != len(LABELS):
        raise ConvertError(f"{source.path}: the model outputs shape {out_shape}, but an emotion "
                           f"model must output {len(LABELS)} classes ({', '.join(LABELS)})")
    if len(source.labels) != out_shape[-1]:
        raise ConvertError(f"{source.meta_path}: lists {len(source.labels)} labels but the model "
                           f"outputs {out_shape[-1]} classes")
    spec = source.spec
    if in_shape[1:] != (spec.height, spec.width, spec.channels):
        raise ConvertError(f"{source.path}: the model takes input {in_shape[1:]}, but "
                           f"{source.meta_path.name} says {spec.height}x{spec.width}x{spec.channels}")
    return model


# What the graph does besides the network, recorded in the sidecar so a reader who runs the
# file alone knows it already averages the mirror (and needs no test-time augmentation).
FLIP_AVERAGE_NOTE = ("the graph classifies its input and the input mirrored left-right, and outputs the "
                     "mean of the two probability vectors: feed one face per row as for any model")


def with_flip_average(model):
    """A Keras model that outputs (model(x) + model(mirror(x))) / 2, the two passes in one graph.

    The same layers run twice, so the converted file holds one copy of the weights. Averaging a
    face with its mirror is what `--tta flip` does outside the model; inside it, every reader of
    the .tflite gets it.
    """
    import keras

    x = keras.Input(model.input_shape[1:], name="image")
    mirrored = keras.ops.flip(x, axis=2)  # (n, H, W, C): W is axis 2
    y = keras.layers.Average(name="probs")([model(x), model(mirrored)])
    return keras.Model(x, y, name=model.name)


def graph_extra(flip_average: bool) -> dict:
    return {"graph": {"flip_average": True, "note": FLIP_AVERAGE_NOTE}} if flip_average else {}


def export_keras(keras_path: str | Path, out_dir: str | Path) -> tuple[Path, Path]:
    """Write the float model without optimizer state: OUT/<arch or stem>.weights.h5 and
    OUT/architecture.json (`keras.models.model_from_json` + `load_weights` rebuild it).

    A training checkpoint carries the optimizer's slots too (about twice the weights); what ships
    is the weights alone.
    """
    source = read_source(keras_path)
    model = load_keras_model(source)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    weights = out / f"{source.arch or Path(source.path).stem}.weights.h5"
    arch = out / "architecture.json"
    with atomic_path(weights, mode=DEFAULT_MODE) as tmp:
        model.save_weights(tmp)
    atomic_write_text(arch, model.to_json())
    return weights, arch


def representative_images(train: Split, size: int = MIN_REP_SIZE, seed: int = REP_SEED,
                          min_size: int = MIN_REP_SIZE) -> np.ndarray:
    """A stratified, deterministic calibration sample: (size, 48, 48) uint8 Training crops.

    Each class gets its share of `size` in proportion to its Training frequency (largest
    remainders round up, every present class gets at least one), so calibration sees the
    classes as training did. Same data and seed -> same images.
    `min_size` is there for tests with tiny models; the CLI always uses MIN_REP_SIZE.
    """
    if size < min_size:
        raise ConvertError(f"representative set too small: --rep-size {size} < {min_size}; int8 "
                           f"calibration needs at least {min_size} images for stable activation ranges")
    n = len(train)
    if n < size:
        raise ConvertError(f"representative set too small: the data has {n} Training images, "
                           f"{size} needed (--rep-size); point --rep-data at the full FER-2013")
    counts = np.bincount(train.labels, minlength=len(LABELS)).astype(np.float64)
    present = counts > 0
    share = size * counts / counts.sum()
    quota = np.floor(share).astype(np.int64)
    quota[present] = np.maximum(quota[present], 1)
    # Hand out what flooring left over to the largest remainders, deterministically.
    for c in np.argsort(-(share - np.floor(share)), kind="stable"):
        if quota.sum() >= size:
            break
        if present[c] and quota[c] < counts[c]:
            quota[c] += 1
    while quota.sum() > size:  # the minimum of one per class can overshoot on tiny sizes
        quota[np.argmax(quota)] -= 1
    rng = np.random.default_rng(seed)
    picked = []
    for c in range(len(counts)):
        idx = np.flatnonzero(train.labels == c)
        picked.append(np.sort(rng.permutation(idx)[: quota[c]]))
    idx = np.sort(np.concatenate(picked))
    return train.images[idx]


class Quantizer:
    """Built once per Keras model; `tflite_bytes = quantizer.quantize(mode)`."""

    def __init__(self, source: SourceModel, model, rep_images: np.ndarray | None = None):
        self.source = source
        self.model = model
        # (n, 1, H, W, 1) float32: batch-of-one samples, as the runtime feeds one face at a time,
        # made by the runtime's own crop -> input function.
        self._rep = None if rep_images is None else to_model_input(rep_images, source.spec)[:, None]

    @property
    def rep_size(self) -> int:
        return 0 if self._rep is None else len(self._rep)

    def quantize(self, mode: str) -> bytes:
        import tensorflow as tf

        if mode not in QUANT_MODES:
            raise ConvertError(f"unknown quantization {mode!r}; use one of {', '.join(QUANT_MODES)}")
        conv = tf.lite.TFLiteConverter.from_keras_model(self.model)
        if mode == "float16":
            conv.optimizations = [tf.lite.Optimize.DEFAULT]
            conv.target_spec.supported_types = [tf.float16]
        elif mode == "dynamic":
            conv.optimizations = [tf.lite.Optimize.DEFAULT]
        elif mode == "int8":
            if self._rep is None:
                raise ConvertError("int8 needs representative images (--rep-data)")
            rep = self._rep
            conv.optimizations = [tf.lite.Optimize.DEFAULT]
            conv.representative_dataset = lambda: ([x] for x in rep)
            # Full-integer: a float op left over is a conversion error, not a silent fallback.
            conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            conv.inference_input_type = tf.int8
            conv.inference_output_type = tf.int8
        try:
            return bytes(conv.convert())
        except Exception as exc:
            raise ConvertError(f"{self.source.path}: TFLite conversion to {mode} failed: {exc}") from None


def card_for(source: SourceModel, mode: str, crop: CropPolicy, command: str = "",
             metrics: dict | None = None, extra: dict | None = None) -> ModelCard:
    """The sidecar for one variant of `source`."""
    more = {"arch": source.arch, "params": source.params} if source.arch else {}
    return ModelCard(labels=source.labels, input=source.spec, crop=crop, quantization=mode,
                     source_sha256=source.sha256, metrics=dict(metrics or {}), command=command,
                     extra={**more, **(extra or {})})


def variant_path(out_dir: str | Path, name: str, mode: str) -> Path:
    return Path(out_dir) / f"{name}_{mode}.tflite"


def write_variant(tflite: bytes, card: ModelCard, out_dir: str | Path, name: str) -> Variant:
    """Write DIR/<name>_<mode>.tflite and its .json; each file appears whole or not at all."""
    path = variant_path(out_dir, name, card.quantization)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, tflite, mode=None)
    write_card(card, path)
    return Variant(card.quantization, path, card, len(tflite))


def write_card(card: ModelCard, model_path: str | Path) -> None:
    with atomic_path(sidecar_path(model_path)) as tmp:
        card.save(tmp)


def parse_modes(values: list[str] | None) -> tuple[str, ...]:
    """['int8'], ['all'], ['float32,int8', 'dynamic'] -> modes in canonical order, no repeats."""
    asked = [v.strip() for raw in (values or ["int8"]) for v in raw.split(",") if v.strip()]
    bad = [v for v in asked if v != "all" and v not in QUANT_MODES]
    if bad:
        raise ConvertError(f"unknown --quant {', '.join(bad)}; use {', '.join(QUANT_MODES)} or all")
    if "all" in asked:
        return QUANT_MODES
    return tuple(m for m in QUANT_MODES if m in asked)


@dataclass(frozen=True)
class ConvertResult:
    source: SourceModel
    variants: tuple  # Variant, in QUANT_MODES order
    report: VerifyReport  # accuracy/agreement (and latency with timing)
    rep_size: int


def convert_model(keras_path: str | Path, modes: tuple[str, ...], out_dir: str | Path, data,
                  name: str = "emotion", crop: CropPolicy | None = None, rep_size: int = MIN_REP_SIZE,
                  min_rep_size: int = MIN_REP_SIZE, command: str = "", timing_faces: int = 0,
                  num_threads: int | None = None, progress: bool | None = None,
                  flip_average: bool = False) -> ConvertResult:
    """Convert `keras_path` to each mode in `out_dir`, score each variant, write its sidecar.

    data: a train.data.FerData; Training feeds int8 calibration, PublicTest/PrivateTest give
    each variant's accuracy and agreement with Keras (recorded in its sidecar `metrics`).
    crop: the runtime crop policy to record (default: the training metadata's).
    timing_faces > 0 also times single-face inference on 1 thread (the --verify report).
    min_rep_size: only tests with tiny data lower it; the CLI keeps MIN_REP_SIZE.
    flip_average: put the mirror average inside the graph (`with_flip_average`); the Keras
    reference every variant is compared with is then the flip-averaged Keras model.
    """
    source = read_source(keras_path)
    if not modes:
        raise ConvertError("no quantization asked for; pass --quant int8 (or float32, float16, dynamic, all)")
    rep = representative_images(data.train, rep_size, min_size=min_rep_size) if "int8" in modes else None
    model = load_keras_model(source)
    if flip_average:
        model = with_flip_average(model)
    crop = crop or source.crop
    ref = keras_reference(model, source.path, source.spec, data)
    report = VerifyReport(keras=ref, data_source=str(data.source), command=command)
    quantizer = Quantizer(source, model, rep)
    extra = {"conversion": {"rep_size": quantizer.rep_size, "rep_seed": REP_SEED,
                            "rep_split": "Training (stratified by class)"} if "int8" in modes else {}}
    graph = graph_extra(flip_average)
    variants = []
    bar = tqdm(modes, desc="convert", unit="variant", disable=tqdm_disable(progress))
    for mode in bar:
        bar.set_postfix_str(mode)
        more = {**graph, **({"conversion": extra["conversion"]} if mode == "int8" else {})}
        card = card_for(source, mode, crop, command, extra=more)
        variant = write_variant(quantizer.quantize(mode), card, out_dir, name)
        scored = evaluate_variant(variant.path, data, ref, num_threads=num_threads,
                                  timing_faces=timing_faces, progress=progress)
        card = card_for(source, mode, crop, command, metrics=scored.sidecar_metrics(ref, str(data.source)),
                        extra=more)
        write_card(card, variant.path)
        variants.append(Variant(mode, variant.path, card, variant.size_bytes))
        report.variants.append(scored)
        log.info("%s: %d bytes, %s", variant.path, variant.size_bytes,
                 ", ".join(f"{k} {s.accuracy:.4f}" for k, s in scored.scores.items()))
    return ConvertResult(source, tuple(variants), report, quantizer.rep_size)


def verify_existing(keras_path: str | Path, modes: tuple[str, ...], out_dir: str | Path, data,
                    name: str = "emotion", command: str = "", timing_faces: int = 200,
                    num_threads: int | None = None, progress: bool | None = None):
    """Score (and time) variants already in `out_dir` against the Keras model they came from.

    Modes whose file is missing are skipped; none at all is an error. Returns a VerifyReport.
    """
    source = read_source(keras_path)
    paths = [variant_path(out_dir, name, m) for m in modes]
    paths = [p for p in paths if p.is_file()]
    if not paths:
        raise ConvertError(f"{out_dir}: no {name}_<quant>.tflite to verify for {', '.join(modes)}; "
                           "convert first (fer-edge convert MODEL --out DIR)")
    for p in paths:
        check_source(p, source.sha256)
    model = load_keras_model(source)
    flips = {bool(load_sidecar(p).extra.get("graph", {}).get("flip_average")) for p in paths}
    if len(flips) > 1:
        raise ConvertError(f"{out_dir}: some variants average the mirror in the graph and some do not; "
                           "verify them separately (convert again into one folder)")
    if flips == {True}:
        model = with_flip_average(model)
    ref = keras_reference(model, source.path, source.spec, data)
    report = VerifyReport(keras=ref, data_source=str(data.source), command=command)
    for p in tqdm(paths, desc="verify", unit="variant", disable=tqdm_disable(progress)):
        report.variants.append(evaluate_variant(p, data, ref, num_threads=num_threads,
                                                timing_faces=timing_faces, progress=progress))
    return report

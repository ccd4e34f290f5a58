"""Train a FER-2013 CNN: augmentation, per-epoch checkpoints, resume, history and curves.

Model selection (best checkpoint, early stopping) looks at PublicTest only; PrivateTest is
never touched here.
"""

from __future__ import annotations

import json
import logging
import math
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from edge.atomic import atomic_path, atomic_write_text
from edge.labels import LABELS, NUM_CLASSES
from edge.classify.preprocess import CropPolicy, InputSpec, to_model_input
from train.augment import AugmentConfig
from train.data import FerData, Split, default_data_path, load_fer2013

log = logging.getLogger(__name__)

STATE_FILE = "state.json"
LAST_CKPT = "last.keras"
BEST_CKPT = "best.keras"


@dataclass(frozen=True)
class TrainConfig:
    arch: str = "edge"
    data: str = field(default_factory=default_data_path)
    out_dir: str = "runs/edge"
    epochs: int = 60
    batch_size: int = 128
    optimizer: str = "sgd"  # "sgd" (Nesterov momentum 0.9) | "adam" | "adamw"
    lr: float = 0.05
    weight_decay: float = 5e-4
    label_smoothing: float = 0.1
    schedule: str = "cosine"  # "cosine" (warm-up + cosine over epochs/time budget) | "plateau"
    warmup_epochs: float = 0.5
    init_from: str = ""  # a .keras model or .weights.h5 whose weights start this run (a warm restart)
    # trained models whose mean flip-averaged probabilities (an ensemble teacher) become soft targets
    distill_from: tuple[str, ...] = ()
    distill_weight: float = 0.5  # share of the teacher's probabilities in each target
    ferplus_weight: float = 0.0  # share of the FER+ vote distribution in each target (0: one-hot only)
    votes: str = ""  # FER+ votes.csv; "" = train.ferplus.default_votes_path(data)
    precision: str = "auto"  # "float32" | "bfloat16" (mixed) | "auto" (bfloat16 where the CPU has it)
    time_budget_min: float = 0.0  # 0: no budget; else the cosine runs over wall-clock time
    patience: int = 15  # early stopping on PublicTest accuracy
    seed: int = 2013
    strategy: str = "default"  # "default" | "mirrored"
    resume: bool = False
    limit: int = 0  # >0: use only this many images per split (smoke runs)
    progress: str = "auto"  # "bar" | "epoch" | "auto" (bar on a terminal)
    augment: AugmentConfig = field(default_factory=AugmentConfig)


@dataclass(frozen=True)
class TrainResult:
    out_dir: Path
    best_path: Path
    best_epoch: int
    best_public_accuracy: float
    epochs_run: int
    wall_s: float
    epoch_s_mean: float
    params: int


def resolve_precision(precision: str) -> str:
    """The Keras dtype policy for `precision`.

    Mixed bfloat16 keeps float32 weights and computes in bfloat16: measured here (AMX), an
    edge-net training step took 516 ms instead of 713 ms; on a CPU without bfloat16 units it
    would be emulated and slower, so "auto" only picks it where the hardware has it.
    """
    from edge.machine import has_fast_bfloat16

    if precision == "auto":
        precision = "bfloat16" if has_fast_bfloat16() else "float32"
    if precision not in ("float32", "bfloat16"):
        raise ValueError(f"unknown precision {precision!r}; use auto, float32 or bfloat16")
    return "mixed_bfloat16" if precision == "bfloat16" else "float32"


def teacher_probs(model_paths, images: np.ndarray) -> np.ndarray:
    """(n, 7) mean probabilities of trained models on (n, 48, 48) uint8 images, each averaged
    with the mirror: one model is self-distillation, several an ensemble teacher."""
    from train.evaluate import EvalError, predict_probs

    probs = []
    for model_path in _as_list(model_paths):
        if not Path(model_path).is_file():
            raise FileNotFoundError(f"--distill-from {model_path}: no such file; pass a trained .keras or "
                                    ".weights.h5 with its metadata, such as models/edge/edge.weights.h5")
        try:
            probs.append(predict_probs(model_path, images, tta="flip"))
        except EvalError as exc:
            raise FileNotFoundError(f"--distill-from: {exc}") from None
    return np.mean(probs, axis=0).astype(np.float32)


def soft_targets(base: np.ndarray, teacher: np.ndarray, weight: float) -> np.ndarray:
    """(n, 7) float32 targets: (1 - weight) x base + weight x the teacher's probabilities.

    `base` is (n,) label indices (one-hot) or (n, 7) targets already (FER+ mixed, say). The
    teacher's flip-averaged beliefs carry which classes a face resembles (the similarity of
    fear and surprise, say), which a one-hot label throws away.
    """
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"distill weight must be in [0, 1], got {weight}")
    if base.ndim == 1:
        base = np.eye(teacher.shape[1], dtype=np.float32)[base]
    return ((1.0 - weight) * base + weight * teacher).astype(np.float32)


def _as_list(paths) -> list[str]:
    return [str(paths)] if isinstance(paths, (str, Path)) else [str(p) for p in paths]


def _limit(split: Split, n: int, seed: int) -> Split:
    if n <= 0 or n >= len(split):
        return split
    idx = np.random.default_rng(seed).permutation(len(split))[:n]
    return split.subset(np.sort(idx))


def input_spec_for(train_images: np.ndarray, side: int = 48) -> InputSpec:
    """The input contract, with mean/std measured on the Training images as the model sees them.

    The statistics come after equalization, so they are rounded figures of the equalized
    pixels; rounding keeps the sidecar readable.
    """
    probe = InputSpec(height=side, width=side, mean=0.0, std=1.0)
    x = to_model_input(train_images, probe)
    return InputSpec(height=side, width=side, mean=round(float(x.mean()), 2),
                     std=round(float(x.std()), 2))


class _Schedule:
    """Warm-up then cosine decay over progress = max(epoch fraction, time fraction).

    With a time budget the learning rate reaches ~0 when the budget is spent, whatever the
    machine's speed (a shared 2-core box is noisy), and training stops there.
    """

    def __init__(self, base_lr, epochs, steps, budget_s, elapsed_before_s, warmup_epochs=0.5):
        self.base_lr, self.epochs, self.steps = base_lr, epochs, steps
        self.budget_s, self.before_s = budget_s, elapsed_before_s
        self.warmup = min(max(warmup_epochs / max(epochs, 1), 1e-6), 0.5)
        self.t0 = time.perf_counter()

    def elapsed_s(self) -> float:
        return self.before_s + time.perf_counter() - self.t0

    def progress(self, epoch: int, batch: int) -> float:
        p = (epoch + batch / self.steps) / self.epochs
        if self.budget_s > 0:
            p = max(p, self.elapsed_s() / self.budget_s)
        return min(p, 1.0)

    def lr(self, epoch: int, batch: int) -> float:
        p = self.progress(epoch, batch)
        if p < self.warmup:
            return self.base_lr * (p / self.warmup)
        q = (p - self.warmup) / (1.0 - self.warmup)
        return self.base_lr * (0.01 + 0.99 * 0.5 * (1.0 + math.cos(math.pi * q)))


def train(cfg: TrainConfig, data: FerData | None = None, argv: list[str] | None = None) -> TrainResult:
    """Train `cfg.arch`; returns where the best (PublicTest) checkpoint is."""
    import keras
    import tensorflow as tf

    from train.augment import augment_batch
    from train.nets import INPUT_SIDE, build, dtype_policy

    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    state_path = out / STATE_FILE
    state = {"epoch": 0, "elapsed_s": 0.0, "best_public_accuracy": -1.0, "best_epoch": 0,
             "epoch_s": []}
    if cfg.resume:
        if not (state_path.is_file() and (out / LAST_CKPT).is_file()):
            raise FileNotFoundError(f"{out}: nothing to resume (no {STATE_FILE} and {LAST_CKPT}); "
                                    "run without --resume to start fresh")
        state = json.loads(state_path.read_text())
        # Resuming re-arms the stopping rules (e.g. a larger --time-budget-min or --epochs).
        state.pop("stopped", None)
    elif state_path.exists():
        raise FileExistsError(f"{out} already holds a training run; pass --resume to continue it "
                              "or choose another --out")

    keras.utils.set_random_seed(cfg.seed + state["epoch"])
    data = data or load_fer2013(cfg.data)
    tr = _limit(data.train, cfg.limit, cfg.seed)
    va = _limit(data.public, cfg.limit, cfg.seed + 1)
    spec = input_spec_for(data.train.images, INPUT_SIDE[cfg.arch])
    y_tr = np.eye(NUM_CLASSES, dtype=np.float32)[tr.labels]
    ferplus = None
    if cfg.ferplus_weight > 0:
        from train.ferplus import default_votes_path, ferplus_targets, load_votes, votes_for

        votes_path = cfg.votes or default_votes_path(cfg.data)
        y_tr, keep = ferplus_targets(tr.labels, votes_for(tr, load_votes(votes_path)), cfg.ferplus_weight)
        ferplus = {"votes": votes_path, "weight": cfg.ferplus_weight, "kept": int(keep.sum()),
                   "dropped_not_a_face_or_unmatched": int((~keep).sum())}
        tr, y_tr = tr.subset(np.flatnonzero(keep)), y_tr[keep]
    teacher = None
    if cfg.distill_from:
        teacher = teacher_probs(cfg.distill_from, tr.images)
        y_tr = soft_targets(y_tr, teacher, cfg.distill_weight)
    x_tr = to_model_input(tr.images, spec)  # (n, side, side, 1) float32, equalized + normalised
    x_va = to_model_input(va.images, spec)
    y_va = np.eye(NUM_CLASSES, dtype=np.float32)[va.labels]

    strategy = tf.distribute.MirroredStrategy() if cfg.strategy == "mirrored" else tf.distribute.get_strategy()
    steps = math.ceil(len(tr) / cfg.batch_size)
    aug = cfg.augment
    ds_tr = (tf.data.Dataset.from_tensor_slices((x_tr, y_tr))
             .shuffle(len(tr), seed=cfg.seed + state["epoch"], reshuffle_each_iteration=True)
             .batch(cfg.batch_size)
             .map(lambda x, y: (augment_batch(x, aug), y), num_parallel_calls=tf.data.AUTOTUNE)
             .prefetch(tf.data.AUTOTUNE))
    ds_va = tf.data.Dataset.from_tensor_slices((x_va, y_va)).batch(256).prefetch(2)

    policy = resolve_precision(cfg.precision)
    with strategy.scope(), dtype_policy(policy):
        if cfg.resume:
            # The checkpoint carries its own dtype policy: a run keeps the precision it began with.
            model = keras.models.load_model(out / LAST_CKPT)
        else:
            model = build(cfg.arch, (spec.height, spec.width, spec.channels), NUM_CLASSES)
            if cfg.init_from:
                _init_weights(model, cfg.init_from)
            model.compile(optimizer=_optimizer(cfg),
                          loss=keras.losses.CategoricalCrossentropy(label_smoothing=cfg.label_smoothing),
                          metrics=["accuracy"])
    params = int(model.count_params())
    (out / "model.json").write_text(model.to_json())  # architecture as JSON, as the source project asks

    meta = {
        "arch": cfg.arch, "dtype_policy": model.dtype_policy.name, "params": params, "labels": list(LABELS),
        "input": spec.to_json(),
        "crop": CropPolicy().to_json(), "config": asdict(cfg),
        "command": " ".join(argv) if argv else " ".join(sys.argv),
        "ferplus": ferplus,
        "teacher": None if teacher is None else {
            "models": _as_list(cfg.distill_from), "weight": cfg.distill_weight, "tta": "flip",
            "train_accuracy": round(float(np.mean(np.argmax(teacher, 1) == tr.labels)), 4)},
        "data": {"source": data.source, "layout": data.layout, "split_note": data.split_note,
                 "train_n": len(tr), "public_n": len(va)},
    }
    sched = _Schedule(cfg.lr, cfg.epochs, steps, cfg.time_budget_min * 60.0, state["elapsed_s"],
                      cfg.warmup_epochs)
    callbacks = [_EpochBookkeeping(out, state, sched, cfg, meta),
                 keras.callbacks.CSVLogger(str(out / "history.csv"), append=cfg.resume)]
    if cfg.schedule == "plateau":
        callbacks.append(keras.callbacks.ReduceLROnPlateau(monitor="val_accuracy", mode="max",
                                                           factor=0.5, patience=4, min_lr=1e-5))
    else:
        callbacks.append(_LrSetter(sched))
    verbose = 1 if cfg.progress == "bar" or (cfg.progress == "auto" and sys.stdout.isatty()) else 2
    if state["epoch"] < cfg.epochs and not state.get("stopped"):
        model.fit(ds_tr, validation_data=ds_va, epochs=cfg.epochs, initial_epoch=state["epoch"],
                  callbacks=callbacks, verbose=verbose)
    _plot_curves(out)
    ep = state["epoch_s"]
    return TrainResult(out, out / BEST_CKPT, state["best_epoch"], state["best_public_accuracy"],
                       state["epoch"], state["elapsed_s"], float(np.mean(ep)) if ep else 0.0, params)


def _init_weights(model, path: str) -> None:
    """Copy weights from a .keras checkpoint or a .weights.h5 (the committed float model)."""
    import keras

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"--init-from {p}: no such file; pass a .keras checkpoint or a "
                                ".weights.h5 such as models/edge/edge.weights.h5")
    if p.name.endswith(".weights.h5"):
        model.load_weights(p)
    else:
        model.set_weights(keras.models.load_model(p, compile=False).get_weights())


def _optimizer(cfg: TrainConfig):
    import keras

    if cfg.optimizer == "sgd":
        return keras.optimizers.SGD(cfg.lr, momentum=0.9, nesterov=True, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adamw":
        return keras.optimizers.AdamW(cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adam":
        return keras.optimizers.Adam(cfg.lr)
    raise ValueError(f"unknown optimizer {cfg.optimizer!r}; use sgd, adam or adamw")


def _keras_callback_base():
    import keras

    return keras.callbacks.Callback


class _LrSetter(_keras_callback_base()):
    def __init__(self, sched: _Schedule):
        super().__init__()
        self.sched, self.epoch = sched, 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        if batch % 10 == 0:
            self.model.optimizer.learning_rate.assign(self.sched.lr(self.epoch, batch))


class _EpochBookkeeping(_keras_callback_base()):
    """Checkpoint every epoch, keep the PublicTest-best model, early-stop, write history.

    The checkpoint and state.json are replaced atomically, so Ctrl-C or a kill at any moment
    leaves a resumable run.
    """

    def __init__(self, out: Path, state: dict, sched: _Schedule, cfg: TrainConfig, meta: dict):
        super().__init__()
        self.out, self.state, self.sched, self.cfg, self.meta = out, state, sched, cfg, meta
        self.epoch_t0 = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_t0 = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        epoch_s = time.perf_counter() - self.epoch_t0
        st = self.state
        st["epoch"] = epoch + 1
        st["elapsed_s"] = self.sched.elapsed_s()
        st["epoch_s"].append(round(epoch_s, 2))
        lr = float(np.asarray(self.model.optimizer.learning_rate))
        row = {k: float(v) for k, v in logs.items()} | {"epoch": epoch + 1, "epoch_s": epoch_s, "lr": lr}
        st.setdefault("history", []).append(row)
        val_acc = float(logs.get("val_accuracy", -1.0))
        if val_acc > st["best_public_accuracy"]:
            st["best_public_accuracy"], st["best_epoch"] = val_acc, epoch + 1
            _atomic_save(self.model, self.out / BEST_CKPT)
        _atomic_save(self.model, self.out / LAST_CKPT)
        stop = epoch + 1 - st["best_epoch"] >= self.cfg.patience
        if self.sched.budget_s > 0 and st["elapsed_s"] + epoch_s > self.sched.budget_s * 1.02:
            stop = True
        if stop:
            st["stopped"] = True
            self.model.stop_training = True
        _atomic_write(self.out / STATE_FILE, json.dumps(st, indent=1))
        self.meta.update(best_epoch=st["best_epoch"], best_public_accuracy=st["best_public_accuracy"],
                         epochs_run=st["epoch"], wall_s=round(st["elapsed_s"], 1),
                         epoch_s_mean=round(float(np.mean(st["epoch_s"])), 2))
        _atomic_write(self.out / "train_meta.json", json.dumps(self.meta, indent=1))
        _atomic_write(self.out / "history.json", json.dumps(st["history"], indent=1))
        log.info("epoch %d: val_accuracy %.4f (best %.4f @ %d), %.0f s, lr %.2e",
                 epoch + 1, val_acc, st["best_public_accuracy"], st["best_epoch"], epoch_s, lr)


def _atomic_write(path: Path, text: str) -> None:
    atomic_write_text(path, text, mode=None)


def _atomic_save(model, path: Path) -> None:
    with atomic_path(path) as tmp:  # ends in .keras, which Keras requires
        model.save(tmp)


def _plot_curves(out: Path) -> Path | None:
    hist_path = out / "history.json"
    if not hist_path.is_file():
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    hist = json.loads(hist_path.read_text())
    ep = [h["epoch"] for h in hist]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    axes[0].plot(ep, [h["loss"] for h in hist], label="train")
    axes[0].plot(ep, [h.get("val_loss", np.nan) for h in hist], label="PublicTest")
    axes[0].set(title="loss", xlabel="epoch")
    axes[1].plot(ep, [h["accuracy"] for h in hist], label="train (augmented)")
    axes[1].plot(ep, [h.get("val_accuracy", np.nan) for h in hist], label="PublicTest")
    axes[1].set(title="accuracy", xlabel="epoch")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    png = out / "curves.png"
    fig.savefig(png, dpi=110)
    plt.close(fig)
    return png

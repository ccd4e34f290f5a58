"""`fer-edge data`, `fer-edge train`, `fer-edge evaluate`."""

from __future__ import annotations

import sys
from pathlib import Path

from edge.cli import CliError, HelpFormatter, StopOnSignals, require
from train.data import DATA_ENV, default_data_path

_FMT = HelpFormatter


def register(sub) -> None:
    p = sub.add_parser("data", help="inspect FER-2013 (CSV or folders)", formatter_class=_FMT)
    dsub = p.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    e = dsub.add_parser("explore", help="class counts per split, sample grid and distribution PNGs",
                        formatter_class=_FMT)
    e.add_argument("--data", default=default_data_path(),
                   help=f"fer2013.csv or a folder with train/ and test/ (or set ${DATA_ENV})")
    e.add_argument("--out", default="reports/data", help="folder for the PNGs and counts JSON")
    e.add_argument("--no-cache", action="store_true", help="decode again instead of using the cache")
    e.set_defaults(func=_cmd_explore)

    t = sub.add_parser("train", help="train a CNN on FER-2013 (needs the [train] extra)", formatter_class=_FMT,
                       description="Train `edge` (our network) or `seed` (the 6-layer baseline). "
                       "Checkpoints every epoch; Ctrl-C and `--resume` continue where it stopped. "
                       "Model selection uses PublicTest only.")
    t.add_argument("--arch", choices=("edge", "seed"), default="edge",
                   help="edge: our 48x48 VGG-style net; seed: the source project's 6-layer baseline")
    t.add_argument("--data", default=default_data_path(),
                   help=f"fer2013.csv or a folder with train/ and test/ (or set ${DATA_ENV})")
    t.add_argument("--out", default="runs/edge", help="run folder (checkpoints, history, curves)")
    t.add_argument("--epochs", type=int, default=60, help="length of the learning-rate schedule")
    t.add_argument("--batch-size", type=int, default=128, help="images per training step")
    t.add_argument("--optimizer", choices=("sgd", "adam", "adamw"), default=None,
                   help="sgd (Nesterov momentum 0.9) for edge, adam for seed when not given")
    t.add_argument("--lr", type=float, default=None,
                   help="peak learning rate; 0.05 with sgd, 0.001 with adam/adamw when not given")
    t.add_argument("--weight-decay", type=float, default=5e-4, help="decoupled weight decay (sgd, adamw)")
    t.add_argument("--label-smoothing", type=float, default=0.1, help="cross-entropy label smoothing")
    t.add_argument("--schedule", choices=("cosine", "plateau"), default=None,
                   help="cosine (warm-up + cosine, edge default) or plateau (reduce-on-plateau, seed default)")
    t.add_argument("--warmup-epochs", type=float, default=0.5, help="linear warm-up before the cosine")
    t.add_argument("--init-from", default="", metavar="MODEL",
                   help="start from this .keras checkpoint's or .weights.h5's weights with a fresh "
                   "schedule (a warm restart), e.g. models/edge/edge.weights.h5")
    t.add_argument("--distill-from", action="append", default=[], metavar="MODEL",
                   help="distillation: mix this trained model's flip-averaged probabilities on each "
                   "Training image into its target, e.g. models/edge/edge.weights.h5; repeat it for an "
                   "ensemble teacher (the models' mean)")
    t.add_argument("--distill-weight", type=float, default=0.5,
                   help="share of the teacher's probabilities in each target (with --distill-from)")
    t.add_argument("--ferplus-weight", type=float, default=0.0,
                   help="share of the FER+ ten-annotator vote distribution in each target (0: the "
                   "original one-hot labels only); with it, images FER+ calls 'not a face' are dropped")
    t.add_argument("--votes", default="", metavar="CSV",
                   help="FER+ votes.csv (default: $FER_EDGE_FERPLUS, else ferplus/votes.csv beside "
                   "the data folder)")
    t.add_argument("--precision", choices=("auto", "float32", "bfloat16"), default="auto",
                   help="bfloat16: mixed precision (float32 weights), ~1.4x faster on CPUs with "
                   "AMX/AVX512-BF16; auto picks it only there")
    t.add_argument("--time-budget-min", type=float, default=0.0,
                   help="fit the cosine schedule to this wall-clock budget and stop there (0: off)")
    t.add_argument("--patience", type=int, default=15, help="early stopping on PublicTest accuracy")
    t.add_argument("--strategy", choices=("default", "mirrored"), default="default",
                   help="mirrored: tf.distribute.MirroredStrategy over all local GPUs (or the CPU)")
    t.add_argument("--resume", action="store_true", help="continue the run in --out")
    t.add_argument("--limit", type=int, default=0, help="use at most N images per split (smoke runs)")
    t.add_argument("--seed", type=int, default=2013, help="random seed (shuffling, augmentation, weights)")
    t.add_argument("--progress", choices=("auto", "bar", "epoch"), default="auto",
                   help="per-batch bar or one line per epoch (auto: bar on a terminal)")
    t.set_defaults(func=_cmd_train)

    v = sub.add_parser("evaluate", help="accuracy, per-class scores, confusion matrix", formatter_class=_FMT)
    v.add_argument("model", help="a .keras model (or a .tflite with its .json sidecar)")
    v.add_argument("--data", default=default_data_path(),
                   help=f"fer2013.csv or a folder with train/ and test/ (or set ${DATA_ENV})")
    v.add_argument("--split", choices=("public", "private"), default="private",
                   help="public: PublicTest (validation); private: PrivateTest (the reported test set)")
    v.add_argument("--json", dest="json_out", default=None, help="write the report here (and a PNG beside it)")
    v.add_argument("--tta", choices=("none", "flip"), default="none",
                   help="also report accuracy averaged with the mirrored image (reported separately)")
    v.add_argument("--votes", default="", metavar="CSV",
                   help="FER+ votes.csv: also score against the FER+ majority labels (default: "
                   "$FER_EDGE_FERPLUS, else ferplus/votes.csv beside the data folder, when present)")
    v.set_defaults(func=_cmd_evaluate)


def _load(path: str, use_cache: bool = True):
    from train.data import DataError, load_fer2013

    try:
        return load_fer2013(path, use_cache=use_cache)
    except DataError as exc:
        raise CliError(str(exc)) from None


def _cmd_explore(args) -> int:
    from train.explore import explore

    require("matplotlib", "train")
    data = _load(args.data, use_cache=not args.no_cache)
    report = explore(data, Path(args.out))
    print(report.text)
    return 0


def _cmd_train(args) -> int:
    require("tensorflow", "train")
    from train.ferplus import VotesError
    from train.fit import TrainConfig, train

    if not 0.0 <= args.distill_weight <= 1.0:
        raise CliError(f"--distill-weight must be between 0 and 1, got {args.distill_weight}")
    if not 0.0 <= args.ferplus_weight <= 1.0:
        raise CliError(f"--ferplus-weight must be between 0 and 1, got {args.ferplus_weight}")

    optimizer = args.optimizer or ("adam" if args.arch == "seed" else "sgd")
    cfg = TrainConfig(
        arch=args.arch, data=args.data, out_dir=args.out, epochs=args.epochs,
        batch_size=args.batch_size, optimizer=optimizer,
        lr=args.lr if args.lr is not None else (0.05 if optimizer == "sgd" else 1e-3),
        weight_decay=args.weight_decay, label_smoothing=args.label_smoothing,
        schedule=args.schedule or ("plateau" if args.arch == "seed" else "cosine"),
        warmup_epochs=args.warmup_epochs, init_from=args.init_from,
        distill_from=tuple(args.distill_from), distill_weight=args.distill_weight,
        ferplus_weight=args.ferplus_weight, votes=args.votes, precision=args.precision,
        time_budget_min=args.time_budget_min, patience=args.patience, strategy=args.strategy,
        resume=args.resume, limit=args.limit, seed=args.seed, progress=args.progress,
    )
    # `kill` (SIGTERM) stops training like Ctrl-C: the last finished epoch stays resumable.
    with StopOnSignals(interrupt=True):
        data = _load(args.data)
        try:
            result = train(cfg, data, argv=["fer-edge", *sys.argv[1:]])
        except (FileExistsError, FileNotFoundError) as exc:
            raise CliError(str(exc)) from None
        except VotesError as exc:
            raise CliError(str(exc)) from None
        except KeyboardInterrupt:
            print(f"\ninterrupted: the last finished epoch is saved; continue with "
                  f"`fer-edge train --resume --out {args.out}` (same options)", file=sys.stderr)
            return 130
    print(f"{result.params:,} parameters; {result.epochs_run} epochs, {result.epoch_s_mean:.0f} s/epoch, "
          f"{result.wall_s / 60:.1f} min; best PublicTest accuracy {result.best_public_accuracy:.4f} "
          f"at epoch {result.best_epoch} -> {result.best_path}")
    return 0


def _cmd_evaluate(args) -> int:
    from train.evaluate import EvalError, evaluate_model

    data = _load(args.data)
    try:
        report = evaluate_model(args.model, data, args.split, tta=args.tta,
                                json_out=Path(args.json_out) if args.json_out else None,
                                votes=args.votes or None)
    except EvalError as exc:
        raise CliError(str(exc)) from None
    print(report.text)
    return 0

"""Smoke training on a few hundred real FER-2013 images, interruption and resume, mirrored strategy.

These never train a full model: a few hundred images, one or two epochs.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tensorflow", reason="the [train] extra is not installed")

from edge.classify.preprocess import crop_face, to_model_input  # noqa: E402
from train.fit import TrainConfig, train  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


def _env():
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(REPO))
    return env


def test_interrupted_run_resumes_where_it_stopped(tmp_path, fer_dir, fer_data):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "edge", "train", "--arch", "edge", "--data", str(fer_dir), "--out", str(out),
           "--epochs", "3", "--limit", "256", "--batch-size", "32", "--progress", "epoch"]
    # A background job inherits SIGINT as ignored; give the child the default so Ctrl-C works.
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            cwd=tmp_path, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    state = out / "state.json"
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and proc.poll() is None:
        if state.is_file() and json.loads(state.read_text())["epoch"] >= 1:
            break
        time.sleep(0.2)
    assert proc.poll() is None, "the run ended before it could be interrupted:\n" + proc.stdout.read()
    proc.send_signal(signal.SIGINT)  # what Ctrl-C sends
    output, _ = proc.communicate(timeout=300)
    assert proc.returncode == 130, output
    assert "--resume" in output
    done = json.loads(state.read_text())["epoch"]
    assert 1 <= done < 3
    assert (out / "last.keras").is_file() and (out / "best.keras").is_file()
    assert not list(out.glob("*.tmp*")), "a half-written file was left behind"

    resumed = subprocess.run(cmd + ["--resume"], env=_env(), capture_output=True, text=True, cwd=tmp_path,
                             timeout=600)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    final = json.loads(state.read_text())
    assert final["epoch"] == 3
    rows = list(csv.DictReader(open(out / "history.csv")))
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2]  # Keras counts from 0: every epoch once
    assert [h["epoch"] for h in json.loads((out / "history.json").read_text())] == [1, 2, 3]
    meta = json.loads((out / "train_meta.json").read_text())
    assert meta["epochs_run"] == 3 and meta["input"]["height"] == 48 and meta["input"]["equalize"] == "hist"
    assert (out / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((out / "model.json").read_text())["class_name"] in ("Functional", "Model")


def test_starting_over_an_existing_run_is_refused(tmp_path, fer_data):
    cfg = TrainConfig(arch="edge", out_dir=str(tmp_path / "r"), epochs=1, limit=64, batch_size=32, progress="epoch")
    train(cfg, fer_data)
    with pytest.raises(FileExistsError, match="--resume"):
        train(cfg, fer_data)


def test_mirrored_strategy_builds_and_takes_a_step(tmp_path, fer_data):
    cfg = TrainConfig(arch="edge", out_dir=str(tmp_path / "m"), epochs=1, limit=64, batch_size=32,
                      strategy="mirrored", progress="epoch")
    result = train(cfg, fer_data)
    assert result.epochs_run == 1
    assert json.loads((tmp_path / "m" / "history.json").read_text())[0]["loss"] > 0


def test_training_and_runtime_preprocess_identically(fer_data):
    """Train/serve parity: a face the runtime crops from a frame becomes the training input."""
    from edge.classify.preprocess import CropPolicy, InputSpec

    spec = InputSpec(height=48, width=48, mean=129.5, std=52.4)
    faces = fer_data.public.subset(np.arange(0, 3589, 500))
    x_train = to_model_input(faces.images, spec)
    # The runtime: the face sits in a frame; the detector's box is exactly the face.
    crops = []
    for img in faces.images:
        frame = np.full((120, 160, 3), 90, np.uint8)
        frame[30:78, 50:98] = img[:, :, None]
        crops.append(crop_face(frame, np.array([50, 30, 98, 78]), spec, CropPolicy()))
    x_runtime = to_model_input(np.stack(crops), spec)
    np.testing.assert_allclose(x_runtime, x_train, atol=1e-6)


@pytest.mark.parametrize("source", ["keras", "weights"])
def test_a_warm_restart_starts_from_the_given_weights(tmp_path, fer_data, source):
    """--init-from takes a .keras checkpoint or the committed .weights.h5 (checkpoints do not
    outlive the machine; the committed float model does)."""
    import keras

    from train.nets import build

    start = build("edge")
    start.set_weights([np.full_like(w, 0.01 * (i + 1)) for i, w in enumerate(start.get_weights())])
    path = tmp_path / ("start.keras" if source == "keras" else "edge.weights.h5")
    start.save(path) if source == "keras" else start.save_weights(path)
    # lr 0: the run's model is exactly the starting weights.
    cfg = TrainConfig(arch="edge", out_dir=str(tmp_path / "w"), epochs=1, limit=64, batch_size=32,
                      lr=0.0, weight_decay=0.0, init_from=str(path), precision="float32", progress="epoch")
    result = train(cfg, fer_data)
    trained = keras.models.load_model(result.out_dir / "last.keras", compile=False)
    conv = [w for w in trained.weights if "kernel" in w.path][0]
    np.testing.assert_allclose(np.asarray(conv), 0.01)


def test_a_missing_warm_restart_file_says_what_to_pass(tmp_path, fer_data):
    cfg = TrainConfig(arch="edge", out_dir=str(tmp_path / "x"), epochs=1, limit=64,
                      init_from=str(tmp_path / "nope.keras"), progress="epoch")
    with pytest.raises(FileNotFoundError, match="weights.h5"):
        train(cfg, fer_data)


@pytest.mark.parametrize("precision, flags, policy", [
    ("float32", set(), "float32"),
    ("bfloat16", set(), "mixed_bfloat16"),
    ("auto", {"avx2"}, "float32"),
    ("auto", {"avx2", "amx_bf16"}, "mixed_bfloat16"),
    ("auto", {"avx512_bf16"}, "mixed_bfloat16"),
])
def test_precision_auto_picks_bfloat16_only_where_the_cpu_has_it(monkeypatch, precision, flags, policy):
    import edge.machine
    from train.fit import resolve_precision

    monkeypatch.setattr(edge.machine, "cpu_flags", lambda: frozenset(flags))
    assert resolve_precision(precision) == policy


def test_a_bfloat16_run_records_its_policy(tmp_path, fer_data):
    cfg = TrainConfig(arch="edge", out_dir=str(tmp_path / "b"), epochs=1, limit=64, batch_size=32,
                      precision="bfloat16", progress="epoch")
    train(cfg, fer_data)
    meta = json.loads((tmp_path / "b" / "train_meta.json").read_text())
    assert meta["dtype_policy"] == "mixed_bfloat16"


def test_soft_targets_mix_the_label_and_the_teacher():
    from train.fit import soft_targets

    teacher = np.array([[0.1, 0.0, 0.0, 0.0, 0.0, 0.0, 0.9], [0.0, 0.5, 0.5, 0.0, 0.0, 0.0, 0.0]], np.float32)
    y = soft_targets(np.array([0, 1]), teacher, 0.5)
    np.testing.assert_allclose(y[0], [0.55, 0, 0, 0, 0, 0, 0.45], atol=1e-6)
    np.testing.assert_allclose(y[1], [0, 0.75, 0.25, 0, 0, 0, 0], atol=1e-6)
    np.testing.assert_allclose(y.sum(1), 1.0, atol=1e-6)
    np.testing.assert_array_equal(soft_targets(np.array([0, 1]), teacher, 0.0), np.eye(7, dtype=np.float32)[[0, 1]])
    with pytest.raises(ValueError, match="distill weight"):
        soft_targets(np.array([0]), teacher[:1], 1.5)


def test_an_ensemble_teacher_is_the_mean_of_its_members(tmp_path, fer_data):
    from train.evaluate import predict_probs
    from train.fit import teacher_probs

    paths = []
    for seed in (1, 2):
        r = train(TrainConfig(arch="edge", out_dir=str(tmp_path / f"m{seed}"), epochs=1, limit=64, batch_size=32,
                              precision="float32", progress="epoch", seed=seed), fer_data)
        paths.append(str(r.best_path))
    images = fer_data.train.images[:12]
    each = [predict_probs(p, images, tta="flip") for p in paths]
    assert not np.allclose(each[0], each[1], atol=1e-4), "two seeds gave the same model"
    np.testing.assert_allclose(teacher_probs(paths, images), (each[0] + each[1]) / 2, atol=1e-6)


def test_ferplus_targets_train_and_are_recorded(tmp_path, fer_dir, fer_data):
    from train.ferplus import default_votes_path

    votes = Path(default_votes_path(fer_dir))
    if not votes.is_file():
        pytest.skip(f"needs the FER+ votes, not found at {votes}: set FER_EDGE_FERPLUS")
    train(TrainConfig(arch="edge", out_dir=str(tmp_path / "f"), epochs=1, limit=128, batch_size=32,
                      precision="float32", progress="epoch", ferplus_weight=0.5, votes=str(votes)), fer_data)
    meta = json.loads((tmp_path / "f" / "train_meta.json").read_text())
    assert meta["ferplus"]["weight"] == 0.5 and meta["config"]["ferplus_weight"] == 0.5
    assert meta["ferplus"]["kept"] + meta["ferplus"]["dropped_not_a_face_or_unmatched"] == 128
    assert meta["ferplus"]["kept"] >= 120  # only the few "not a face" images go


def test_self_distillation_from_the_committed_kind_of_weights(tmp_path, fer_data):
    """--distill-from a .weights.h5 (with its train_meta.json) trains, and the run records the teacher."""
    from train.evaluate import predict_probs

    first = train(TrainConfig(arch="edge", out_dir=str(tmp_path / "t"), epochs=1, limit=64, batch_size=32,
                              precision="float32", progress="epoch"), fer_data)
    import keras

    weights = tmp_path / "t" / "edge.weights.h5"
    keras.models.load_model(first.best_path, compile=False).save_weights(weights)
    images = fer_data.train.images[:16]
    # The weights file evaluates exactly like the checkpoint it came from.
    np.testing.assert_allclose(predict_probs(weights, images, tta="flip"),
                               predict_probs(first.best_path, images, tta="flip"), atol=1e-5)
    train(TrainConfig(arch="edge", out_dir=str(tmp_path / "s"), epochs=1, limit=64, batch_size=32,
                      precision="float32", progress="epoch", distill_from=(str(weights),), distill_weight=0.7),
          fer_data)
    teacher = json.loads((tmp_path / "s" / "train_meta.json").read_text())["teacher"]
    assert teacher["models"] == [str(weights)] and teacher["weight"] == 0.7 and 0.0 <= teacher["train_accuracy"] <= 1.0
    with pytest.raises(FileNotFoundError, match="distill-from"):
        train(TrainConfig(arch="edge", out_dir=str(tmp_path / "x"), epochs=1, limit=64,
                          distill_from=str(tmp_path / "nope.weights.h5"), progress="epoch"), fer_data)

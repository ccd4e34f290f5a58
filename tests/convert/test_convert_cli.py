"""convert/cli.py: `fer-edge convert` end to end, and each bad input as a clear error (exit 2)."""

from __future__ import annotations

import json
import shutil
import zipfile

import pytest

from edge.cli import main
from edge.labels import LABELS

from convert_helpers import build_tiny, make_fer_subset, write_meta


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    # The CLI caches decoded FER-2013 in the user cache; keep the test's subsets out of it.
    monkeypatch.setenv("FER_EDGE_CACHE", str(tmp_path / "cache"))


def _run(argv, capsys) -> tuple[int, str, str]:
    rc = main(argv)
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


@pytest.fixture(scope="module")
def cli_converted(tiny_model, fer_subset, tmp_path_factory):
    """One real `fer-edge convert --verify` run: int8 and float32, crop flags, timing on 5 faces."""
    out = tmp_path_factory.mktemp("cli-out")
    report = tmp_path_factory.mktemp("cli-report")
    argv = ["convert", str(tiny_model), "--quant", "int8", "--quant", "float32",
            "--rep-data", str(fer_subset), "--out", str(out), "--report-dir", str(report),
            "--crop-margin", "0.2", "--crop-shift-y", "0.08", "--crop-align", "--verify",
            "--timing-faces", "5"]
    mp = pytest.MonkeyPatch()
    mp.setenv("FER_EDGE_CACHE", str(out / "cache"))
    try:
        rc = main(argv)
    finally:
        mp.undo()
    return rc, out, report


def test_convert_writes_variants_sidecars_and_report(cli_converted, tiny_model):
    rc, out, report = cli_converted
    assert rc == 0
    for mode in ("int8", "float32"):
        assert (out / f"emotion_{mode}.tflite").is_file()
        card = json.loads((out / f"emotion_{mode}.json").read_text())
        assert card["crop"] == {"margin": 0.2, "shift_y": 0.08, "align": True}
        assert card["command"].startswith(f"fer-edge convert {tiny_model} --quant float32 --quant int8")
        assert "--crop-align" in card["command"] and "--rep-size 500" in card["command"]
        assert {"public_accuracy", "private_accuracy"} <= set(card["metrics"])
    assert not (out / "emotion_float16.tflite").exists()
    md = (report / "emotion_verify.md").read_text()
    assert "Keras (reference)" in md and "emotion_int8.tflite" in md and "emotion_float32.tflite" in md
    assert "int8 accuracy drop vs Keras" in md
    js = json.loads((report / "emotion_verify.json").read_text())
    assert js["keras"]["splits"]["private"]["n"] == 10 * len(LABELS)
    rows = {r["quantization"]: r for r in js["variants"]}
    assert rows["int8"]["input_dtype"] == "int8" and rows["float32"]["input_dtype"] == "float32"
    assert 0.0 <= rows["int8"]["splits"]["private"]["input_clipped"] <= 1.0
    assert "input_clipped" not in rows["float32"]["splits"]["private"]
    for r in rows.values():
        assert r["timing_faces"] == 5 and r["invoke_ms_median_1thread"] > 0
        assert 0.0 <= r["splits"]["public"]["agreement"] <= 1.0
        assert set(r["drop_vs_keras_points"]) == {"public", "private"}
    assert "int8_drop_vs_keras_points" in js["summary"] and "int8_over_float32_size" in js["summary"]


def test_verify_only_rechecks_existing_variants(cli_converted, tiny_model, fer_subset, tmp_path, capsys):
    _, out, _ = cli_converted
    rc, stdout, err = _run(["convert", str(tiny_model), "--quant", "all", "--rep-data", str(fer_subset),
                            "--out", str(out), "--report-dir", str(tmp_path), "--verify-only",
                            "--timing-faces", "3"], capsys)
    assert rc == 0, err
    js = json.loads((tmp_path / "emotion_verify.json").read_text())
    assert sorted(r["quantization"] for r in js["variants"]) == ["float32", "int8"]  # what exists
    assert "Keras (reference)" in stdout


@pytest.fixture(scope="module")
def eight_class_model(subset_data, tmp_path_factory):
    path = tmp_path_factory.mktemp("eight") / "best.keras"
    write_meta(path, subset_data.train.images)
    build_tiny(num_classes=8).save(path)
    return path


@pytest.fixture(scope="module")
def small_subset(fer_dir, tmp_path_factory):
    """Only 30 Training images per class: too few to calibrate int8 with 500."""
    return make_fer_subset(fer_dir, tmp_path_factory.mktemp("fer-small"), 30, 2)


def _bad_cases():
    """(id, build argv from fixtures, words in the error)."""
    return [
        ("missing-file", lambda f: ["convert", str(f["tmp"] / "nope.keras")], "model file not found"),
        ("not-keras-text", lambda f: ["convert", str(f["text"])], "not a Keras model"),
        ("not-keras-zip", lambda f: ["convert", str(f["zip"])], "has no config.json"),
        ("no-metadata", lambda f: ["convert", str(f["bare"])], "no training metadata"),
        ("eight-classes", lambda f: ["convert", str(f["eight"]), "--rep-data", str(f["subset"])],
         "must output 7 classes"),
        ("rep-size-below-minimum", lambda f: ["convert", str(f["model"]), "--rep-size", "100",
                                              "--rep-data", str(f["subset"])],
         "representative set too small: --rep-size 100 < 500"),
        ("too-few-training-images", lambda f: ["convert", str(f["model"]), "--rep-data", str(f["small"])],
         "representative set too small: the data has 210 Training images, 500 needed"),
        ("unknown-quant", lambda f: ["convert", str(f["model"]), "--quant", "int4"], "unknown --quant int4"),
        ("missing-data", lambda f: ["convert", str(f["model"]), "--rep-data", str(f["tmp"] / "nodata")],
         "no such file or folder"),
        ("mismatched-sidecar-labels", lambda f: ["convert", str(f["model"]), "--verify-only",
                                                 "--out", str(f["edited_labels"]), "--rep-data", str(f["subset"])],
         "field 'labels' has 6 names but the model outputs 7 classes"),
        ("mismatched-sidecar-input", lambda f: ["convert", str(f["model"]), "--verify-only",
                                                "--out", str(f["edited_input"]), "--rep-data", str(f["subset"])],
         "field 'input' says 96x96x1 but the model takes 24x24x1"),
        ("nothing-to-verify", lambda f: ["convert", str(f["model"]), "--verify-only", "--out", str(f["tmp"]),
                                         "--rep-data", str(f["subset"])], "no emotion_<quant>.tflite to verify"),
    ]


@pytest.fixture
def bad_inputs(tmp_path, tiny_model, eight_class_model, fer_subset, small_subset, cli_converted):
    text = tmp_path / "notes.keras"
    text.write_text("not a model")
    zpath = tmp_path / "other.keras"
    with zipfile.ZipFile(zpath, "w") as z:
        z.writestr("readme.txt", "a zip, but not a Keras model")
    bare = tmp_path / "bare" / "model.keras"
    bare.parent.mkdir()
    shutil.copyfile(tiny_model, bare)
    _, out, _ = cli_converted
    edited = {}
    for key, edit in (("edited_labels", lambda d: d.update(labels=d["labels"][:-1])),
                      ("edited_input", lambda d: d["input"].update(height=96, width=96))):
        folder = tmp_path / key
        folder.mkdir()
        shutil.copyfile(out / "emotion_int8.tflite", folder / "emotion_int8.tflite")
        d = json.loads((out / "emotion_int8.json").read_text())
        edit(d)
        (folder / "emotion_int8.json").write_text(json.dumps(d))
        edited[key] = folder
    return {"tmp": tmp_path, "text": text, "zip": zpath, "bare": bare, "eight": eight_class_model,
            "model": tiny_model, "subset": fer_subset, "small": small_subset, **edited}


@pytest.mark.parametrize("make_argv, words", [c[1:] for c in _bad_cases()], ids=[c[0] for c in _bad_cases()])
def test_bad_input_is_a_clear_error(bad_inputs, capsys, make_argv, words):
    rc, _, err = _run(make_argv(bad_inputs), capsys)
    assert rc == 2
    assert err.startswith("fer-edge convert: error: ")
    assert words in err
    assert "Traceback" not in err

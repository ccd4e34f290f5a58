"""python -m train.curve: a table and a plot from the reports runs wrote (PublicTest and real photos only)."""

from __future__ import annotations

import json

import pytest

from edge.labels import LABELS
from train.curve import main


def _run(root, name, weight, public, ferplus, wild=None):
    d = root / name
    d.mkdir()
    (d / "train_meta.json").write_text(json.dumps({"config": {"ferplus_weight": weight}, "epochs_run": 2}))
    (d / "eval_public.json").write_text(json.dumps({"accuracy": public, "ferplus_majority": {"accuracy": ferplus}}))
    if wild is not None:
        (d / "wild").mkdir()
        recall = {c: wild / 2 for c in LABELS}
        (d / "wild" / "photos.json").write_text(json.dumps({"fer_edge": {
            "faces_found": 0.97, "accuracy": wild, "macro_recall": wild / 2, "recall": recall}}))
    return d


def test_table_and_plot_from_reports(tmp_path, capsys):
    runs = [_run(tmp_path, "w0", 0.0, 0.676, 0.667, 0.48), _run(tmp_path, "w05", 0.5, 0.659, 0.768, 0.52)]
    out = tmp_path / "out"
    assert main(["--out", str(out), *map(str, runs)]) == 0
    md = (out / "curve.md").read_text()
    assert "| w05 | 0.50 | 2 | 65.90% | 76.80% | 97.0% | 52.0% | 26.0% |" in md
    assert "python -m train.curve --out" in md
    assert [p["ferplus_weight"] for p in json.loads((out / "curve.json").read_text())] == [0.0, 0.5]
    assert (out / "curve.png").read_bytes()[:4] == b"\x89PNG"
    assert "w0" in capsys.readouterr().out


def test_a_run_without_photos_gets_dashes_and_a_missing_eval_is_an_error(tmp_path):
    run = _run(tmp_path, "w1", 1.0, 0.6, 0.8)
    assert main(["--out", str(tmp_path / "o"), str(run)]) == 0
    assert "| w1 | 1.00 | 2 | 60.00% | 80.00% | — |" in (tmp_path / "o" / "curve.md").read_text()
    with pytest.raises(SystemExit):
        main(["--out", str(tmp_path / "o"), str(tmp_path)])

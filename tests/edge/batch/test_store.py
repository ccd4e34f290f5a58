"""edge.batch.store: the batch folder's writer (the index, the markers) and its helpers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]


def test_warming_the_index_writer_imports_what_parquet_needs_in_the_background():
    """The driver warms index.parquet's imports on a free core, so that the final index costs no
    import after the last input: after the thread, pyarrow, its parquet module and the pandas it
    pulls in are loaded (a fresh interpreter, so nothing was loaded before)."""
    pytest.importorskip("pyarrow.parquet", reason="index.parquet is written only when pyarrow is installed")
    code = ("import sys\nfrom edge.batch.store import warm_index_writer\n"
            "assert 'pyarrow' not in sys.modules\nt = warm_index_writer()\nt.join(60)\n"
            "print(not t.is_alive(), 'pyarrow.parquet' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "True"]


def test_without_pyarrow_there_is_nothing_to_warm(monkeypatch):
    import importlib.util

    from edge.batch import store

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "pyarrow" else real(name, *a))
    assert store.warm_index_writer() is None

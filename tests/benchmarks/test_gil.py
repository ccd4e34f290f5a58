"""benchmarks/gil.py tells work that releases the GIL from work that holds it."""

from __future__ import annotations

import time

from benchmarks.gil import gil_markdown, python_progress


def test_sleeping_releases_the_gil_and_python_holds_it():
    released = python_progress(lambda: time.sleep(0.2))
    held = python_progress(lambda: sum(range(2_000_000)))
    assert released["python_thread_rate"] > 2 * held["python_thread_rate"]
    md = gil_markdown({"sleep": released, "python": held})
    assert "| sleep |" in md and "| python |" in md

"""benchmarks/speed/gil.py: what it measures over a stage's work, and its table."""

from __future__ import annotations

import time

from benchmarks.speed.gil import gil_markdown, python_progress


def test_progress_is_measured_over_the_work_and_reported():
    # Whether the spinner keeps up depends on the machine's load, so the rates are the
    # benchmark's to report; here: what is measured, and that it is measured over the work.
    released = python_progress(lambda: time.sleep(0.2))
    held = python_progress(lambda: sum(range(2_000_000)))
    for result in (released, held):
        assert set(result) == {"python_thread_rate", "work_ms"} and result["python_thread_rate"] >= 0.0
    assert released["work_ms"] >= 200.0  # sleep(0.2) never returns early
    md = gil_markdown({"sleep": released, "python": held})
    assert "| sleep |" in md and "| python |" in md

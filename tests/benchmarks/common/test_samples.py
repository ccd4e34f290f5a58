"""benchmarks/common/samples.py: latency statistics, preallocated series, and the interleaved measuring loop."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.common.samples import RunSamples, Series, run_interleaved, samples_report, summarize


@pytest.mark.parametrize("values, expected", [
    ([], {"p50": 0.0, "n": 0}),
    ([5.0], {"p50": 5.0, "p95": 5.0, "mean": 5.0, "max": 5.0, "n": 1}),
    (list(range(1, 101)), {"p50": 50.5, "max": 100.0, "mean": 50.5, "n": 100}),
])
def test_summarize(values, expected):
    out = summarize(values)
    for k, v in expected.items():
        assert out[k] == pytest.approx(v)


def test_series_grows_past_its_capacity_and_reads_as_an_array():
    s = Series(capacity=16)
    for v in range(40):
        s.append(float(v))
    assert len(s) == 40 and s[-1] == 39.0 and np.asarray(s).sum() == sum(range(40))


class _Counter:
    """A side whose frames cost nothing, with no more than `frames` of them."""

    def __init__(self, name: str, frames: int):
        self.name, self.frames = name, frames
        self.samples = RunSamples(stages=("work",), capacity=8)

    def step(self) -> bool:
        if len(self.samples.end_to_end_ms) >= self.frames:
            return False
        self.samples.stages_ms["work"].append(1.0)
        self.samples.end_to_end_ms.append(1.0)
        self.samples.pipeline_ms.append(1.0)
        self.samples.faces.append(1)
        return True


def test_interleaved_sides_measure_the_same_number_of_frames():
    lead, other = _Counter("a", 100), _Counter("b", 100)
    run_interleaved([lead, other], frames=30, block=7, progress=False)
    assert len(lead.samples.end_to_end_ms) == len(other.samples.end_to_end_ms) == 30
    report = samples_report(lead.samples)
    assert report["frames"] == 30 and report["faces_per_frame"]["mean"] == 1.0
    assert len(lead.samples.rss_mb) == 30 and report["rss_mb"]["peak"] > 0


def test_a_side_that_runs_out_ends_the_run():
    lead, other = _Counter("a", 12), _Counter("b", 100)
    run_interleaved([lead, other], frames=50, block=5, progress=False)
    assert len(lead.samples.end_to_end_ms) == len(other.samples.end_to_end_ms) == 12

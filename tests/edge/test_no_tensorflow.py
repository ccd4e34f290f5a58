"""`edge` runs without TensorFlow (a Raspberry Pi has none): checked in a fresh interpreter."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

SCRIPTS = {
    "import edge": "import edge",
    "from edge import Pipeline": "from edge import Pipeline, PipelineConfig, FrameResult, Faces, Frame",
    "the run command's modules": "import edge.cli.run, edge.capture.thread, edge.track.tracker, edge.outputs.overlay, edge.outputs.sinks, "
                                 "edge.pipeline",
    # Build the real pipeline and process a frame: the interpreter must come from LiteRT.
    "a processed frame": "import numpy as np\nfrom edge import Pipeline\n"
                         "with Pipeline.from_defaults() as p:\n"
                         "    r = p.process(np.zeros((240, 320, 3), np.uint8))\n"
                         "assert r.timings.total_ms > 0",
}


@pytest.mark.parametrize("name", list(SCRIPTS))
def test_edge_never_imports_tensorflow(name, detector_dir):
    code = SCRIPTS[name] + "\nimport sys, json\n" \
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras'))))"
    env = {**os.environ, "FER_EDGE_MODEL_DIR": str(detector_dir)}
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    loaded = json.loads(proc.stdout.strip().splitlines()[-1])
    assert loaded == [], f"{name} imported {loaded[:5]}"

"""fer-edge runtime: face detection + int8 emotion CNN on LiteRT, for laptops and Raspberry Pis.

    from edge import Pipeline
    with Pipeline.from_defaults() as pipe:
        result = pipe.process(image_bgr)
        print(result.emotions, result.timings.total_ms)

Names are imported on first use, so `import edge` stays cheap; nothing here imports TensorFlow.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "Pipeline": "edge.pipeline",
    "PipelineConfig": "edge.pipeline",
    "Frame": "edge.types",
    "Faces": "edge.types",
    "FrameResult": "edge.types",
    "StageTimings": "edge.types",
    "draw": "edge.outputs.overlay",
    "frame_record": "edge.record",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'edge' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

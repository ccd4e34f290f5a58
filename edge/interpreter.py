"""The TFLite interpreter, from ai_edge_litert, else tflite_runtime, else tensorflow.lite.

A Raspberry Pi install has no TensorFlow, so TensorFlow is only the last resort.
"""

from __future__ import annotations

import logging
import os

log = logging.getLogger(__name__)

# Interpreter threads per model when none are asked for: the whole-frame detector and the emotion
# model are too small for threads to pay off, and the capture thread needs the other core
# (`fer-edge bench --threads 1|2` compares them; docs/benchmarks.md).
DEFAULT_THREADS = 1


def interpreter_class():
    """The first available Interpreter class, in order of preference."""
    try:
        from ai_edge_litert.interpreter import Interpreter

        return Interpreter
    except ImportError:
        pass
    try:
        from tflite_runtime.interpreter import Interpreter

        return Interpreter
    except ImportError:
        pass
    try:
        import tensorflow as tf  # noqa: F401  (last resort; never present on a Pi install)

        return tf.lite.Interpreter
    except ImportError:
        raise ImportError("no TFLite interpreter found: pip install ai-edge-litert "
                          "(or tflite-runtime on older Raspberry Pi OS)") from None


def load_interpreter(model_path: str | os.PathLike, num_threads: int | None = None):
    """Build and allocate an interpreter once; callers keep it for the life of the stage."""
    if not os.path.isfile(model_path):
        raise FileNotFoundError(f"{model_path}: model file not found")
    from edge.console import native_stderr_to_log

    cls = interpreter_class()
    # LiteRT announces its XNNPACK delegate on fd 2 while allocating; that goes to our log.
    with native_stderr_to_log(log):
        interp = cls(model_path=str(model_path), num_threads=num_threads)
        interp.allocate_tensors()
    return interp

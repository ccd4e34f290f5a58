"""The TFLite emotion classifier: gray face crops in, probabilities out.

The interpreter is built once. Quantization parameters come from the interpreter itself, and
the sidecar must match the model (input shape, label count) or loading fails.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from edge.interpreter import load_interpreter
from edge.classify.preprocess import to_model_input
from edge.classify.sidecar import ModelCard, check_against_interpreter, load_sidecar

log = logging.getLogger(__name__)


TTA = ("none", "flip")


class EmotionClassifier:
    """`probs = classifier.classify(crops)` for (n, H, W) uint8 gray crops -> (n, classes) float32.

    tta="flip" also classifies each face's mirror image, in the same interpreter call, and
    averages the two: as `fer-edge evaluate --tta flip` scores a model, at twice the cost.
    """

    def __init__(self, model_path: str | Path, num_threads: int | None = None, batch: bool = True,
                 tta: str = "none"):
        if tta not in TTA:
            raise ValueError(f"unknown tta {tta!r}; choose one of {', '.join(TTA)}")
        self.model_path = Path(model_path)
        self.card: ModelCard = load_sidecar(self.model_path)
        self._interp = load_interpreter(self.model_path, num_threads=num_threads)
        check_against_interpreter(self.card, self._interp, where=str(self.model_path.with_suffix(".json")))
        inp = self._interp.get_input_details()[0]
        out = self._interp.get_output_details()[0]
        self._in_index, self._out_index = inp["index"], out["index"]
        self._in_dtype = inp["dtype"]
        self._in_scale, self._in_zero = inp["quantization"]
        self._out_scale, self._out_zero = out["quantization"]
        self._out_dtype = out["dtype"]
        self._batch_size = int(inp["shape"][0])
        # Batched calls resize the input tensor; one-by-one keeps the allocated batch of 1.
        self.batch = batch
        # A graph that already averages each face with its mirror gains nothing from doing it twice.
        self.flip_in_graph = bool(self.card.extra.get("graph", {}).get("flip_average"))
        if tta == "flip" and self.flip_in_graph:
            log.info("%s averages the mirror inside its graph; --tta flip adds nothing and is skipped",
                     self.model_path.name)
            tta = "none"
        self.tta = tta
        self.labels = self.card.labels
        self.spec = self.card.input
        self._lut = self._pixel_table() if self._in_dtype != np.float32 else None

    @property
    def input_dtype(self):
        return self._in_dtype

    def _pixel_table(self) -> np.ndarray:
        """(256,) model input per pixel value: (p - mean) / std, quantized as the model wants it.

        The same arithmetic as `quantize_input(to_model_input(...))`, done once for all 256 values, so a
        uint8 crop becomes the int8 input with one lookup instead of float maths per pixel.
        """
        values = np.arange(256, dtype=np.float32)[:, None, None, None]
        values -= np.float32(self.spec.mean)
        values *= np.float32(1.0 / self.spec.std)  # as edge.classify.preprocess.to_model_input normalises
        return self.quantize_input(values).reshape(256)

    def classify_pixels(self, pixels: np.ndarray) -> np.ndarray:
        """pixels: (n, H, W) uint8 crops at the model's input size that went through every pixel
        step of the preprocessing (everything but `(p - mean) / std`) -> (n, classes) float32."""
        if pixels.dtype != np.uint8 or pixels.ndim != 3:
            raise ValueError(f"expected (n, H, W) uint8 pixels, got {pixels.shape} {pixels.dtype}")
        if pixels.shape[0] == 0:
            return np.zeros((0, len(self.labels)), np.float32)
        if self._lut is None:
            x = (pixels.astype(np.float32) - np.float32(self.spec.mean)) * np.float32(1.0 / self.spec.std)
            return self._infer(x[..., None])
        return self._infer(self._lut[pixels][..., None])

    def _infer(self, q: np.ndarray) -> np.ndarray:
        """q: (n, H, W, C) model input -> (n, classes) float32."""
        n = len(q)
        if self.tta == "flip":  # mirroring commutes with every pixel step, so the input is mirrored
            q = np.concatenate([q, q[:, :, ::-1]])
        if self.batch:
            probs = self._dequantize(self._run(q))
        else:
            probs = np.concatenate([self._dequantize(self._run(q[i:i + 1])) for i in range(len(q))])
        if self.tta == "flip":
            probs = (probs[:n] + probs[n:]) / np.float32(2.0)
        return probs

    def quantize_input(self, x: np.ndarray) -> np.ndarray:
        """Normalised float input -> the interpreter's input: unchanged for a float model, else
        round(x / scale + zero_point) clipped to the integer range (the model's own parameters)."""
        if self._in_dtype == np.float32:
            return x
        info = np.iinfo(self._in_dtype)
        return np.clip(self._scaled(x), info.min, info.max).astype(self._in_dtype)

    def input_clipped(self, x: np.ndarray) -> float | None:
        """The share of normalised float input values that quantization clips (outside the range
        calibration fixed); None for a float model."""
        if self._in_dtype == np.float32:
            return None
        info = np.iinfo(self._in_dtype)
        q = self._scaled(x)
        return float(np.mean((q < info.min) | (q > info.max)))

    def _scaled(self, x: np.ndarray) -> np.ndarray:
        return np.round(x / self._in_scale + self._in_zero)

    def _dequantize(self, y: np.ndarray) -> np.ndarray:
        if self._out_dtype == np.float32:
            return y
        return ((y.astype(np.float32) - self._out_zero) * self._out_scale).astype(np.float32)

    def _run(self, x: np.ndarray) -> np.ndarray:
        n = x.shape[0]
        if n != self._batch_size:
            self._interp.resize_tensor_input(self._in_index, [n, *x.shape[1:]])
            self._interp.allocate_tensors()
            self._batch_size = n
        self._interp.set_tensor(self._in_index, x)
        self._interp.invoke()
        return self._interp.get_tensor(self._out_index)

    def classify_inputs(self, x: np.ndarray) -> np.ndarray:
        """x: (n, H, W, C) float32, already normalised -> (n, classes) float32 probabilities."""
        if x.shape[0] == 0:
            return np.zeros((0, len(self.labels)), np.float32)
        return self._infer(self.quantize_input(x))

    def classify(self, crops_gray: np.ndarray) -> np.ndarray:
        """crops_gray: (n, h, w) uint8 gray face crops -> (n, classes) float32 probabilities."""
        if len(crops_gray) == 0:
            return np.zeros((0, len(self.labels)), np.float32)
        return self.classify_inputs(to_model_input(crops_gray, self.spec))

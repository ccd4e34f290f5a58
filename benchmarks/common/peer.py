"""The peer: the `fer` package (25.x), run side by side with fer-edge on the same frames.

What `FER(mtcnn=False)` does in fer 25.10.3 (read from its source, fer/fer.py):
- detection: OpenCV's Haar cascade `detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5,
  minSize=(50, 50))` on the full frame converted to gray;
- crop: the box made square, grown by 10 px on each side, cut from the gray frame padded by
  40 px (pad value = mean of the bottom two rows), resized to 64x64 (cv2.resize, bilinear);
- input: `(pixel / 255 - 0.5) * 2`, float32 (1, 64, 64, 1);
- classifier: its `data/emotion_model_quantized.tflite` (91 KB, a mini-Xception: 15 conv + 8
  depthwise conv; dynamic-range quantized: 9 int8 weight tensors, float32 activations, float32
  input and output, not a full-int8 model) through `tf.lite.Interpreter`, one face per `invoke`,
  TFLite's default thread count; labels in FER-2013 order, the same as ours.

fer 25.x's default cascade path is `cv2.data.haarcascades`, which OpenCV 5 no longer has, so
the adapter passes the cascade that fer ships (`fer/data/haarcascade_frontalface_default.xml`).
`fer/__init__.py` does not export `FER` in 25.10.3: it is imported from `fer.fer`.

Install without its heavy requirements (full tensorflow, facenet-pytorch -> torch with CUDA
wheels, moviepy, pandas are not needed for `FER(mtcnn=False)`): see `install_hint()`.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import time
import warnings
from pathlib import Path

import numpy as np

from benchmarks.common.samples import RunSamples, run_interleaved, samples_report

log = logging.getLogger(__name__)

PEER_NAME = "fer 25.x FER(mtcnn=False)"
INSTALL_LINES = ("pip install --no-deps fer==25.10.3",
                 "pip install tensorflow-cpu requests pillow 'setuptools<81'")


def install_hint() -> str:
    return "install the peer with: " + " && ".join(INSTALL_LINES)


def available() -> bool:
    """True when the `fer` package is importable (without importing it: it pulls TensorFlow)."""
    return importlib.util.find_spec("fer") is not None


def fer_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("fer")
    except PackageNotFoundError:
        return "unknown"


def peer_data_dir() -> Path:
    """fer's data folder (Haar cascade, TFLite model), found without importing fer."""
    spec = importlib.util.find_spec("fer")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"the peer `fer` is not installed; {install_hint()}")
    return Path(list(spec.submodule_search_locations)[0]) / "data"


class FerPeer:
    """fer's `FER(mtcnn=False)` built once; `detect(image_bgr)` and `classify_crops(crops)`."""

    def __init__(self):
        if not available():
            raise ImportError(f"the peer `fer` is not installed; {install_hint()}")
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's start-up chatter
        root = logging.getLogger()
        root_handlers, root_level = list(root.handlers), root.level
        with warnings.catch_warnings():
            # tf.lite.Interpreter's deprecation notice: it is fer's choice, not ours.
            warnings.simplefilter("ignore")
            import fer as fer_pkg
            from fer.fer import FER
        # fer calls logging.basicConfig(level=INFO) at import; undo it so it doesn't flood.
        for h in list(root.handlers):
            if h not in root_handlers:
                root.removeHandler(h)
        root.setLevel(root_level)
        self.data_dir = Path(fer_pkg.__file__).parent / "data"
        cascade = self.data_dir / "haarcascade_frontalface_default.xml"
        if not cascade.is_file():
            raise FileNotFoundError(f"{cascade}: fer's Haar cascade is missing from the fer package")
        self.version = fer_version()
        self.name = f"fer {self.version} FER(mtcnn=False)"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.fer = FER(cascade_file=str(cascade), mtcnn=False)
        self.target_size = (64, 64)

    def find_faces(self, image_bgr: np.ndarray) -> list:
        """Haar boxes, (x, y, w, h) each, as fer finds them."""
        return list(self.fer.find_faces(image_bgr, bgr=True))

    def detect_emotions(self, image_bgr: np.ndarray, face_rectangles=None) -> list:
        """fer's own `detect_emotions` (boxes + 7 scores per face)."""
        return self.fer.detect_emotions(image_bgr, face_rectangles=face_rectangles)

    @staticmethod
    def preprocess_crops(crops_gray: np.ndarray, size: tuple[int, int] = (64, 64)) -> np.ndarray:
        """(n, h, w) uint8 gray crops -> (n, 64, 64) float32 in [-1, 1], as fer.detect_emotions does."""
        import cv2

        faces = np.stack([cv2.resize(c, size) for c in crops_gray]).astype(np.float32)
        return (faces / 255.0 - 0.5) * 2.0

    def classify_crops(self, crops_gray: np.ndarray) -> np.ndarray:
        """(n, h, w) uint8 gray face crops -> (n, 7) float32 scores from fer's own TFLite path."""
        if len(crops_gray) == 0:
            return np.zeros((0, 7), np.float32)
        x = self.preprocess_crops(crops_gray, self.target_size)
        return np.asarray(self.fer._classify_emotions(x), dtype=np.float32)


class PeerSide:
    """The peer on one reader (a benchmarks.speed.pipeline.FrameReader): `step()` measures one frame.

    Stages: decode; detect (gray conversion + Haar: fer's `find_faces`); classify (fer's
    `detect_emotions` given those boxes: gray conversion, padding, crop, resize, normalise,
    TFLite per face). fer's own `detect_emotions(image)` converts to gray once for both; here
    the frame is converted twice (about 0.2 ms at 640x480, under 1 % of the peer's time), and
    a frame without faces skips `detect_emotions`'s padding.
    """

    def __init__(self, reader, peer: FerPeer | None = None, capacity: int = 4096):
        self.reader = reader
        self.peer = peer or FerPeer()
        self.name = "fer"
        self.samples = RunSamples(stages=("decode", "detect", "classify"), capacity=capacity)

    def warmup(self, n: int) -> None:
        for _ in range(n):
            image = self.reader.read()
            if image is None:
                return
            self.peer.detect_emotions(image)

    def step(self) -> bool:
        s = self.samples
        t_a = time.perf_counter()
        image = self.reader.read()
        t_b = time.perf_counter()
        if image is None:
            return False
        boxes = self.peer.find_faces(image)
        t_c = time.perf_counter()
        emotions = self.peer.detect_emotions(image, face_rectangles=boxes) if len(boxes) else []
        t_d = time.perf_counter()
        s.stages_ms["decode"].append((t_b - t_a) * 1e3)
        s.stages_ms["detect"].append((t_c - t_b) * 1e3)
        s.stages_ms["classify"].append((t_d - t_c) * 1e3)
        s.pipeline_ms.append((t_d - t_b) * 1e3)
        s.end_to_end_ms.append((t_d - t_a) * 1e3)
        s.faces.append(len(emotions))
        return True

    def report(self) -> dict:
        out = samples_report(self.samples)
        out.update(name=self.peer.name, version=self.peer.version,
                   note="Haar cascade + fer's TFLite emotion model (64x64 float input), one face per invoke; "
                        "RSS is the shared process's (fer-edge's models and TensorFlow loaded together)")
        out["_samples"] = self.samples
        return out


def run_peer_bench(reader, *, frames: int, warmup: int = 10, progress: bool = True) -> dict:
    """The peer alone on `frames` frames from `reader`; the same report keys as ours."""
    side = PeerSide(reader, capacity=frames + 1)
    side.warmup(warmup)
    run_interleaved([side], frames=frames, block=max(frames, 1), progress=progress)
    return side.report()


def peer_accuracy(images: np.ndarray, labels: np.ndarray, *, timing_faces: int = 200) -> dict:
    """fer's classifier on FER-2013 crops fed directly (its preprocessing), plus ms per face.

    images: (n, 48, 48) uint8 gray; labels: (n,) ints in edge.labels order (= fer's order).
    """
    peer = FerPeer()
    preds = np.empty(len(images), np.int64)
    chunk = 256
    for i in range(0, len(images), chunk):
        preds[i:i + chunk] = np.argmax(peer.classify_crops(images[i:i + chunk]), axis=1)
    k = min(timing_faces, len(images))
    t0 = time.perf_counter()
    for i in range(k):
        peer.classify_crops(images[i:i + 1])
    ms_per_face = (time.perf_counter() - t0) * 1e3 / max(k, 1)
    model = peer.data_dir / "emotion_model_quantized.tflite"
    return {"name": peer.name, "model": str(model), "size_kb": round(os.path.getsize(model) / 1024, 1),
            "input": "64x64 gray, (p/255-0.5)*2, float32", "n": int(len(images)),
            "accuracy": float((preds == labels).mean()) if len(images) else 0.0,
            "ms_per_face": ms_per_face}

"""The model's JSON sidecar: the contract between convert/ and the runtime.

`models/emotion_int8.tflite` sits beside `models/emotion_int8.json`. The runtime hard-codes
none of labels, input size, normalisation or crop policy: it reads them here, and refuses a
sidecar that does not match its .tflite.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from edge.classify.preprocess import CropPolicy, InputSpec

FORMAT = "fer-edge-model/2"
# The whole crop -> input contract in words, for readers of the JSON who do not read our code.
PREPROCESS_FORMULA = ("gray = cv2.cvtColor(crop, COLOR_BGR2GRAY); bring to input height x width "
                      "(a 48x48 FER-2013 image: see from_fer); if equalize == 'hist': "
                      "gray = cv2.equalizeHist(gray); x = (gray - mean) / std as float32, "
                      "shape (1, height, width, 1)")


class SidecarError(ValueError):
    """A missing, malformed or mismatched sidecar; the message names the field."""


@dataclass(frozen=True)
class ModelCard:
    labels: tuple[str, ...]
    input: InputSpec  # size, colour and normalisation (mean, std)
    crop: CropPolicy
    quantization: str  # float32 | float16 | dynamic | int8
    source_sha256: str = ""
    metrics: dict = field(default_factory=dict)  # public_accuracy, private_accuracy, ...
    command: str = ""
    extra: dict = field(default_factory=dict)  # anything else the file holds (arch, params, ...)

    def to_json(self) -> dict:
        spec = self.input
        return {
            "format": FORMAT,
            "labels": list(self.labels),
            # Colour is always gray: the crop is converted with cv2.COLOR_BGR2GRAY.
            "input": {"height": spec.height, "width": spec.width, "channels": spec.channels,
                      "color": "gray"},
            "normalization": {"equalize": spec.equalize, "mean": spec.mean, "std": spec.std,
                              "formula": PREPROCESS_FORMULA},
            "from_fer": spec.from_fer,
            "crop": self.crop.to_json(),
            "quantization": self.quantization,
            "source_model": {"sha256": self.source_sha256},
            "metrics": self.metrics,
            "command": self.command,
            **self.extra,
        }

    @classmethod
    def from_json(cls, d: dict, where: str = "sidecar") -> "ModelCard":
        try:
            inp, norm = d["input"], d["normalization"]
            spec = InputSpec(height=int(inp["height"]), width=int(inp["width"]),
                             channels=int(inp["channels"]), mean=float(norm["mean"]),
                             std=float(norm["std"]), equalize=str(norm["equalize"]),
                             from_fer=str(d["from_fer"]))
            known = {"format", "labels", "input", "normalization", "from_fer", "crop", "quantization",
                     "source_model", "metrics", "command"}
            return cls(labels=tuple(d["labels"]), input=spec, crop=CropPolicy.from_json(d.get("crop", {})),
                       quantization=str(d["quantization"]),
                       source_sha256=str(d.get("source_model", {}).get("sha256", "")),
                       metrics=dict(d.get("metrics", {})), command=str(d.get("command", "")),
                       extra={k: v for k, v in d.items() if k not in known})
        except KeyError as exc:
            raise SidecarError(f"{where}: missing field {exc.args[0]!r}") from None
        except (TypeError, ValueError) as exc:
            raise SidecarError(f"{where}: malformed field: {exc}") from None

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_json(), indent=2) + "\n")


def sidecar_path(model_path: str | Path) -> Path:
    return Path(model_path).with_suffix(".json")


def load_sidecar(model_path: str | Path) -> ModelCard:
    """Read the sidecar that sits beside `model_path` (same stem, .json)."""
    p = sidecar_path(model_path)
    if not p.is_file():
        raise SidecarError(f"{p}: sidecar not found; every .tflite needs its .json "
                           "(written by `fer-edge convert`)")
    try:
        d = json.loads(p.read_text())
    except json.JSONDecodeError as exc:
        raise SidecarError(f"{p}: not valid JSON ({exc})") from None
    return ModelCard.from_json(d, where=str(p))


def check_against_interpreter(card: ModelCard, interpreter, where: str = "sidecar") -> None:
    """Refuse a sidecar whose input shape or label count does not match the model."""
    inp = interpreter.get_input_details()[0]
    out = interpreter.get_output_details()[0]
    _, h, w, c = (int(v) for v in inp["shape"])
    spec = card.input
    if (h, w, c) != (spec.height, spec.width, spec.channels):
        raise SidecarError(f"{where}: field 'input' says {spec.height}x{spec.width}x{spec.channels} "
                           f"but the model takes {h}x{w}x{c}")
    n_out = int(out["shape"][-1])
    if n_out != len(card.labels):
        raise SidecarError(f"{where}: field 'labels' has {len(card.labels)} names "
                           f"but the model outputs {n_out} classes")

"""Where a trained .keras model's metadata (normalisation, labels, arch) lives.

Training writes `train_meta.json` into its run folder; a shipped model keeps it beside itself
as `<stem>.json`. Both are looked for, in that order.
"""

from __future__ import annotations

import json
from pathlib import Path

from edge.classify.preprocess import CropPolicy, InputSpec


class MetaError(FileNotFoundError):
    """No training metadata beside a .keras model."""


def find_train_meta(model_path: str | Path) -> Path:
    p = Path(model_path)
    for cand in (p.with_suffix(".json"), p.parent / "train_meta.json"):
        if cand.is_file():
            return cand
    raise MetaError(f"{p}: no training metadata ({p.with_suffix('.json').name} or train_meta.json "
                    "beside it), so its input normalisation is unknown; keep the file that "
                    "`fer-edge train` wrote next to the model")


def load_train_meta(model_path: str | Path) -> dict:
    return json.loads(find_train_meta(model_path).read_text())


def input_spec_of(meta: dict) -> InputSpec:
    return InputSpec.from_json(meta["input"])


def crop_policy_of(meta: dict) -> CropPolicy:
    return CropPolicy.from_json(meta.get("crop", {}))

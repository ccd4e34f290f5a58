"""The one definition of the emotion classes, in the order of FER-2013's CSV `emotion` column."""

from __future__ import annotations

import numpy as np

LABELS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
NUM_CLASSES = len(LABELS)
LABEL_INDEX: dict[str, int] = {name: i for i, name in enumerate(LABELS)}


def dataset_index(names) -> np.ndarray:
    """(k,) int64 index into LABELS of each of a model's label names (its output columns), so
    that a model's predictions compare with FER-2013 labels; ValueError for an unknown name."""
    try:
        return np.array([LABEL_INDEX[n] for n in names], np.int64)
    except KeyError as exc:
        raise ValueError(f"model label {exc.args[0]!r} is not a FER-2013 label ({', '.join(LABELS)})") from None

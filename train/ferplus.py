"""FER+ ten-annotator votes for FER-2013 images: soft training targets and majority labels.

FER+ (Barsoum et al., ICMI 2016) had ten crowd workers label every FER-2013 image. The votes
come as a CSV with one row per image (`file` and/or `ferplus_name` name it) and a count per
FER+ class: neutral, happiness, surprise, sadness, anger, disgust, fear, contempt, unknown and
nf (not a face). Only the seven classes FER-2013 has are used; contempt and unknown votes are
dropped, and images the annotators call "not a face" are excluded.

Votes are joined to a `Split` by its `names`: a folder layout's relative paths match the
`file` column, a CSV's row names (`fer0000000.png`) match `ferplus_name`.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.labels import LABELS
from train.data import DATA_ENV, Split, default_data_path

# FER+ column -> edge.labels name, for the seven classes both label sets share.
FERPLUS_TO_LABEL = {"neutral": "neutral", "happiness": "happy", "surprise": "surprise",
                    "sadness": "sad", "anger": "angry", "disgust": "disgust", "fear": "fear"}
OTHER_COLUMNS = ("contempt", "unknown", "nf")
VOTES_ENV = "FER_EDGE_FERPLUS"


class VotesError(Exception):
    """A votes file that cannot be used; the message names it and says what to do."""


@dataclass(frozen=True)
class Votes:
    """Vote counts for the images of one split, in the split's order."""

    emotions: np.ndarray  # (n, 7) float32 vote counts in edge.labels order
    other: np.ndarray  # (n, 3) float32 vote counts: contempt, unknown, nf
    known: np.ndarray  # (n,) bool: the image has a row in the votes file

    def __len__(self) -> int:
        return int(self.known.shape[0])

    @property
    def is_face(self) -> np.ndarray:
        """(n,) bool: known, with some emotion vote, and "not a face" no more voted than its top emotion."""
        nf = self.other[:, 2]
        return self.known & (self.emotions.sum(1) > 0) & (nf <= self.emotions.max(1))

    def distribution(self) -> np.ndarray:
        """(n, 7) float32: each image's emotion votes as probabilities (zeros where no vote)."""
        total = self.emotions.sum(1, keepdims=True)
        return np.where(total > 0, self.emotions / np.maximum(total, 1), 0.0).astype(np.float32)

    def majority(self) -> np.ndarray:
        """(n,) int64 label index, or -1 where FER+ has no majority among the seven classes.

        FER+'s own "majority" rule: a class's single votes are dropped as outliers, then the
        top class must hold more than half of what is left of all ten columns. An image whose
        majority is contempt, unknown or not-a-face gets -1.
        """
        counts = np.concatenate([self.emotions, self.other], axis=1)
        counts = np.where(counts <= 1, 0.0, counts)
        total = counts.sum(1)
        top = counts.argmax(1)
        ok = self.known & (total > 0) & (counts.max(1) > 0.5 * total) & (top < len(LABELS))
        return np.where(ok, top, -1).astype(np.int64)


def default_votes_path(data_path: str | os.PathLike | None = None) -> str:
    """`$FER_EDGE_FERPLUS`, else `ferplus/votes.csv` beside the FER-2013 folder or CSV."""
    if os.environ.get(VOTES_ENV):
        return os.environ[VOTES_ENV]
    data = Path(data_path or default_data_path())
    base = data.parent if data.suffix.lower() == ".csv" else data
    return str(base.parent / "ferplus" / "votes.csv")


def load_votes(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Name -> (10,) float32 counts (FER+ column order of FERPLUS_TO_LABEL, then OTHER_COLUMNS).

    Both the `file` and the `ferplus_name` of a row are keys, so either layout joins.
    """
    p = Path(path)
    if not p.is_file():
        raise VotesError(f"{p}: no FER+ votes file. It is votes.csv with a row per FER-2013 image "
                         f"(file, ferplus_name and the ten vote columns); pass --votes PATH or set "
                         f"{VOTES_ENV}=PATH (by default it is looked for beside the data: "
                         f"ferplus/votes.csv next to ${DATA_ENV}'s folder).")
    columns = (*FERPLUS_TO_LABEL, *OTHER_COLUMNS)
    table: dict[str, np.ndarray] = {}
    with open(p, newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in columns if c not in (reader.fieldnames or ())]
        if missing:
            raise VotesError(f"{p}: missing column(s) {', '.join(missing)}; expected the FER+ vote "
                             f"columns {', '.join(columns)}")
        for row in reader:
            try:
                counts = np.array([float(row[c]) for c in columns], np.float32)
            except ValueError:
                raise VotesError(f"{p}:{reader.line_num}: vote counts must be numbers") from None
            for key in (row.get("file"), row.get("ferplus_name")):
                if key:
                    table[key] = counts
    return table


def votes_for(split: Split, table: dict[str, np.ndarray]) -> Votes:
    """The votes of `split`'s images, in order; images without a row are marked unknown."""
    if len(split) and not len(split.names):
        raise VotesError("these images carry no file names, so FER+ votes cannot be matched; "
                         "load FER-2013 with train.data.load_fer2013")
    order = [LABELS.index(FERPLUS_TO_LABEL[c]) for c in FERPLUS_TO_LABEL]
    emotions = np.zeros((len(split), len(LABELS)), np.float32)
    other = np.zeros((len(split), len(OTHER_COLUMNS)), np.float32)
    known = np.zeros((len(split),), bool)
    for i, name in enumerate(split.names):
        counts = table.get(str(name))
        if counts is None:
            continue
        emotions[i, order] = counts[:len(order)]
        other[i] = counts[len(order):]
        known[i] = True
    return Votes(emotions, other, known)


def ferplus_targets(labels: np.ndarray, votes: Votes, weight: float) -> tuple[np.ndarray, np.ndarray]:
    """Soft targets and the rows to keep: (1 - weight) x one-hot label + weight x FER+ votes.

    Returns ((n, 7) float32 targets, (n,) bool keep). With weight > 0, only images with a
    FER+ row that is a face are kept: FER+ left out exactly the files its annotators called
    "not a face", so an image without votes is one of those.
    """
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"FER+ weight must be in [0, 1], got {weight}")
    onehot = np.eye(len(LABELS), dtype=np.float32)[labels]
    if weight == 0.0:
        return onehot, np.ones(len(labels), bool)
    face = votes.is_face
    dist = votes.distribution()
    targets = np.where(face[:, None], (1.0 - weight) * onehot + weight * dist, onehot)
    return targets.astype(np.float32), face

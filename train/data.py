"""FER-2013 loaders for both forms users have: the Kaggle CSV and the image-folder layout.

Both produce the same `FerData`: uint8 (n, 48, 48) images and int64 labels in `edge.labels`
order, split into train / public (validation, PublicTest) / private (test, PrivateTest).
Decoded arrays are cached as .npz keyed by a fingerprint of the source, so a changed source
is decoded again.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from edge.atomic import atomic_path
from edge.labels import LABEL_INDEX, LABELS

log = logging.getLogger(__name__)

IMAGE_SIDE = 48
SPLITS = ("train", "public", "private")
_USAGE_TO_SPLIT = {"Training": "train", "PublicTest": "public", "PrivateTest": "private"}
_PREFIX_TO_SPLIT = {"Training_": "train", "PublicTest_": "public", "PrivateTest_": "private"}
_IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".pgm"}
CACHE_VERSION = 2  # 2: splits carry their file names


class DataError(Exception):
    """Bad dataset input; the message names the path or line and says what to do."""


@dataclass(frozen=True)
class Split:
    images: np.ndarray  # (n, 48, 48) uint8 gray
    labels: np.ndarray  # (n,) int64, indices into edge.labels.LABELS
    # (n,) str: where each image came from, the key that joins other annotations (FER+ votes):
    # the path under the dataset folder ("train/angry/Training_1.jpg"), or for the CSV the
    # FER+ name of its row ("fer0000000.png", the row's index among the CSV's data rows).
    # Empty when unknown (arrays built by hand).
    names: np.ndarray = field(default_factory=lambda: np.zeros((0,), "<U1"))

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def class_counts(self) -> list[int]:
        return np.bincount(self.labels, minlength=len(LABELS)).tolist()

    def subset(self, idx: np.ndarray) -> "Split":
        return Split(self.images[idx], self.labels[idx], self.names[idx] if len(self.names) else self.names)


@dataclass(frozen=True)
class FerData:
    train: Split
    public: Split
    private: Split
    source: str
    layout: str  # "csv" | "folder"
    split_note: str  # how public/private were obtained
    skipped: tuple[str, ...] = field(default=())  # undecodable files, skipped and reported

    def split(self, name: str) -> Split:
        if name not in SPLITS:
            raise ValueError(f"unknown split {name!r}; use one of {', '.join(SPLITS)}")
        return getattr(self, name)


# Where FER-2013 is looked for when no --data is given: $FER_EDGE_DATA, else data/fer2013 in the
# working folder.
DATA_ENV = "FER_EDGE_DATA"
DEFAULT_DATA = "data/fer2013"


def default_data_path() -> str:
    """FER-2013's location: `$FER_EDGE_DATA`, else DEFAULT_DATA."""
    return os.environ.get(DATA_ENV) or DEFAULT_DATA


def default_cache_dir() -> Path:
    base = os.environ.get("FER_EDGE_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "fer-edge"
    )
    return Path(base) / "data"


def load_fer2013(path: str | os.PathLike, cache_dir: str | os.PathLike | None = None,
                 use_cache: bool = True) -> FerData:
    """Load FER-2013 from a `fer2013.csv` file or a folder with `train/` and `test/`.

    A folder holding `fer2013.csv` is read as the CSV.
    """
    p = Path(path).expanduser()
    if not p.exists():
        raise DataError(f"{p}: no such file or folder. FER-2013 is the Kaggle fer2013.csv or its "
                        "folder layout train/<class>/ and test/<class>/; pass --data PATH or set "
                        f"{DATA_ENV}=PATH.")
    if p.is_dir() and (p / "fer2013.csv").is_file() and not (p / "train").is_dir():
        p = p / "fer2013.csv"
    if p.is_file():
        if p.suffix.lower() != ".csv":
            raise DataError(f"{p}: unknown layout: expected the Kaggle fer2013.csv "
                            "(emotion,pixels,Usage) or a folder with train/ and test/.")
        layout, fingerprint = "csv", _file_fingerprint(p)
    elif (p / "train").is_dir() and (p / "test").is_dir():
        layout, fingerprint = "folder", _folder_fingerprint(p)
    else:
        raise DataError(f"{p}: unknown layout: expected fer2013.csv or the folders train/<class>/ "
                        f"and test/<class>/ (found: {', '.join(sorted(x.name for x in p.iterdir())[:8]) or 'nothing'}).")

    cache_file = None
    if use_cache:
        cache_file = Path(cache_dir or default_cache_dir()) / f"fer2013-{layout}-{fingerprint}.npz"
        if cache_file.is_file():
            try:
                return _read_cache(cache_file)
            except Exception as exc:  # a corrupt cache is only a cache: decode again
                log.warning("ignoring unreadable cache %s: %s", cache_file, exc)
    data = _load_csv(p) if layout == "csv" else _load_folder(p)
    if cache_file is not None:
        _write_cache(cache_file, data)
    return data


# ---------------------------------------------------------------- fingerprints and cache

def _file_fingerprint(p: Path) -> str:
    st = p.stat()
    key = f"v{CACHE_VERSION}|{p.resolve()}|{st.st_size}|{st.st_mtime_ns}"
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def _folder_fingerprint(root: Path) -> str:
    h = hashlib.sha256(f"v{CACHE_VERSION}|{root.resolve()}".encode())
    for top in ("train", "test"):
        for dirpath, dirnames, filenames in os.walk(root / top):
            dirnames.sort()
            for name in sorted(filenames):
                st = os.stat(os.path.join(dirpath, name))
                h.update(f"{dirpath}/{name}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def _write_cache(cache_file: Path, data: FerData) -> None:
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    meta = {"source": data.source, "layout": data.layout, "split_note": data.split_note,
            "skipped": list(data.skipped)}
    arrays = {f"{s}_{k}": getattr(data.split(s), k) for s in SPLITS for k in ("images", "labels", "names")}
    with atomic_path(cache_file) as tmp, open(tmp, "xb") as f:  # a crash leaves no half-written cache
        np.savez(f, meta=np.array(json.dumps(meta)), **arrays)


def _read_cache(cache_file: Path) -> FerData:
    with np.load(cache_file) as z:
        meta = json.loads(str(z["meta"]))
        splits = {s: Split(z[f"{s}_images"], z[f"{s}_labels"], z[f"{s}_names"]) for s in SPLITS}
    return FerData(**splits, source=meta["source"], layout=meta["layout"],
                   split_note=meta["split_note"], skipped=tuple(meta["skipped"]))


# ---------------------------------------------------------------- CSV

def _load_csv(p: Path) -> FerData:
    buckets: dict[str, tuple[list, list, list]] = {s: ([], [], []) for s in SPLITS}
    row_index = 0
    with open(p, newline="") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None or [h.strip() for h in header[:3]] != ["emotion", "pixels", "Usage"]:
            raise DataError(f"{p}:1: expected the header 'emotion,pixels,Usage', got {header!r}")
        for row in reader:
            line = reader.line_num
            if not row:
                continue
            if len(row) != 3:
                raise DataError(f"{p}:{line}: expected 3 fields (emotion,pixels,Usage), got {len(row)}")
            emotion, pixels, usage = row
            try:
                label = int(emotion)
            except ValueError:
                raise DataError(f"{p}:{line}: emotion {emotion!r} is not an integer 0-6") from None
            if not 0 <= label < len(LABELS):
                raise DataError(f"{p}:{line}: emotion {label} is outside 0-6")
            split = _USAGE_TO_SPLIT.get(usage.strip())
            if split is None:
                raise DataError(f"{p}:{line}: Usage {usage!r} is not Training, PublicTest or PrivateTest")
            try:
                arr = np.array(pixels.split(), dtype=np.int64)
            except ValueError:
                raise DataError(f"{p}:{line}: pixels must be space-separated integers") from None
            if arr.size != IMAGE_SIDE * IMAGE_SIDE:
                raise DataError(f"{p}:{line}: expected {IMAGE_SIDE * IMAGE_SIDE} pixels "
                                f"(48x48), got {arr.size}")
            if arr.min() < 0 or arr.max() > 255:
                raise DataError(f"{p}:{line}: pixel values must be 0-255")
            buckets[split][0].append(arr.astype(np.uint8).reshape(IMAGE_SIDE, IMAGE_SIDE))
            buckets[split][1].append(label)
            buckets[split][2].append(f"fer{row_index:07d}.png")
            row_index += 1
    splits = {s: _stack(*buckets[s]) for s in SPLITS}
    return FerData(**splits, source=str(p), layout="csv",
                   split_note="splits from the CSV's Usage column")


def _stack(images: list, labels: list, names: list) -> Split:
    if not images:
        return Split(np.zeros((0, IMAGE_SIDE, IMAGE_SIDE), np.uint8), np.zeros((0,), np.int64),
                     np.zeros((0,), "<U1"))
    return Split(np.stack(images), np.asarray(labels, dtype=np.int64), np.asarray(names, dtype=str))


# ---------------------------------------------------------------- folders

def _class_files(split_dir: Path) -> list[tuple[Path, int]]:
    out = []
    for d in sorted(split_dir.iterdir()):
        if not d.is_dir():
            continue
        if d.name.lower() not in LABEL_INDEX:
            raise DataError(f"{d}: unknown class folder {d.name!r}; expected one of {', '.join(LABELS)}")
        label = LABEL_INDEX[d.name.lower()]
        out += [(f, label) for f in sorted(d.iterdir()) if f.suffix.lower() in _IMAGE_EXTS]
    return out


def _read_image(f: Path) -> np.ndarray | None:
    img = cv2.imread(str(f), cv2.IMREAD_GRAYSCALE)
    if img is None:
        return None
    if img.shape != (IMAGE_SIDE, IMAGE_SIDE):
        raise DataError(f"{f}: image is {img.shape[1]}x{img.shape[0]}, expected 48x48 "
                        "(FER-2013 crops); resize it or remove it")
    return img


def _load_folder(root: Path) -> FerData:
    skipped: list[str] = []
    buckets: dict[str, tuple[list, list, list]] = {s: ([], [], []) for s in SPLITS}
    test_unprefixed: list[tuple[np.ndarray, int, str]] = []
    for top in ("train", "test"):
        for f, label in _class_files(root / top):
            img = _read_image(f)
            if img is None:
                skipped.append(str(f))
                continue
            split = next((s for pre, s in _PREFIX_TO_SPLIT.items() if f.name.startswith(pre)), None)
            if top == "train":
                split = "train"
            name = f.relative_to(root).as_posix()
            if split is None:
                test_unprefixed.append((img, label, name))
            else:
                buckets[split][0].append(img)
                buckets[split][1].append(label)
                buckets[split][2].append(name)
    note = "splits from the file-name prefixes (Training_, PublicTest_, PrivateTest_)"
    if test_unprefixed:
        # Deterministic stratified halves: each class's files, sorted by name, are shuffled
        # with a fixed seed and split in two, so every run picks the same images.
        rng = np.random.default_rng(2013)
        by_class: dict[int, list] = {}
        for item in sorted(test_unprefixed, key=lambda t: t[2]):
            by_class.setdefault(item[1], []).append(item)
        for label in sorted(by_class):
            items = by_class[label]
            order = rng.permutation(len(items))
            half = (len(items) + 1) // 2
            for rank, i in enumerate(order):
                split = "public" if rank < half else "private"
                buckets[split][0].append(items[i][0])
                buckets[split][1].append(label)
                buckets[split][2].append(items[i][2])
        note = (f"test/ has {len(test_unprefixed)} files without PublicTest_/PrivateTest_ prefixes: "
                "split deterministically (seed 2013), stratified by class, half validation "
                "(public) and half test (private)")
    if skipped:
        log.warning("skipped %d undecodable image(s), e.g. %s", len(skipped), skipped[0])
    splits = {s: _stack(*buckets[s]) for s in SPLITS}
    return FerData(**splits, source=str(root), layout="folder", split_note=note,
                   skipped=tuple(skipped))

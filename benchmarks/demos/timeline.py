"""Videos with known expression changes, for `fer-edge report` (its end-to-end test and README chart).

    python -m benchmarks.demos.timeline two-faces --out reports/timeline/two_faces
    python -m benchmarks.demos.timeline panel --out reports/timeline/panel

`two-faces`: two FER-2013 PublicTest faces on a 1280x720 room, each switching from label X to
label Y at a known time (A at 5 s, B at 3 s, of 8 s). The faces are chosen by running the
pipeline on each candidate where the video will show it and keeping those it labels right
with confidence >= 0.6, so the truth holds for whichever model is shipped.

`panel`: no recorded multi-person footage ships with this project, so this video is composed
from real photographs: the `wild/` set beside FER-2013 holds several photos of the same
people with different expressions. Three people side by side, each photo replaced every 4 s
by one of another expression, the faces drifting a little and the middle place covered for
a second, as by a passer-by. The labels are the photo set's own (single annotator, noisy).

Each command writes the video, then runs the real `fer-edge run --report OUT` on it.
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edge.cli import HelpFormatter
from train.data import default_data_path

# --------------------------------------------------------------------------- two FER-2013 faces

TWO_FACES_SIZE = (1280, 720)
TWO_FACES_FPS = 15.0
TWO_FACES_SECONDS = 8.0
SLOTS = {"A": (180, 190, 300), "B": (780, 210, 300)}  # x, y, side of each face's square
SWITCH_S = {"A": 5.0, "B": 3.0}  # A: X until 5 s then Y (dominant X); B: X until 3 s (dominant Y)
CANDIDATE_CLASSES = ("happy", "surprise", "neutral", "sad", "angry")
CANDIDATES_PER_CLASS = 30
MIN_CONFIDENCE = 0.6


@dataclass(frozen=True)
class TwoFaceTruth:
    video: Path  # the file written
    seconds: float
    slots: dict  # face name -> (x, y, side) of its square
    labels: dict  # face name -> (label before, label after)
    switch_s: dict  # face name -> the time its face changes

    def dominant(self, name: str) -> str:
        before, after = self.labels[name]
        return before if self.switch_s[name] > self.seconds / 2 else after


def _room(size: tuple[int, int], seed: int) -> np.ndarray:
    from benchmarks.scenes.synthetic import make_background

    return make_background("room", size, np.random.default_rng(seed))


def _two_face_frame(background: np.ndarray, faces: dict[str, np.ndarray], i: int, rng=None) -> np.ndarray:
    from benchmarks.scenes.synthetic import paste_face

    image = background.copy()
    for k, (name, face) in enumerate(sorted(faces.items())):
        x, y, side = SLOTS[name]
        dx = int(round(6 * math.sin(i / 9.0 + k)))  # a little head movement
        paste_face(image, face, (x + dx, y, x + dx + side, y + side))
    if rng is not None:  # sensor grain, new every frame
        image = np.clip(image + rng.normal(0, 2.0, image.shape), 0, 255).astype(np.uint8)
    return image


def _box_fits_slot(box_xyxy: np.ndarray, slot: tuple[int, int, int]) -> bool:
    """The detector's box is centred in the face's square and not larger than it by much.

    Some crops make the detector draw a box far larger than the square (1.6x seen); when the
    video swaps such a face in, the box jumps and the tracker rightly starts a new track, which
    is not what this video is for.
    """
    x, y, side = slot
    x1, y1, x2, y2 = (float(v) for v in box_xyxy)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    return x <= cx <= x + side and y <= cy <= y + side and max(x2 - x1, y2 - y1) <= 1.25 * side


def confident_faces(fer_test: Path, model: str | None = None, detector_model: str | None = None
                    ) -> dict[str, list[np.ndarray]]:
    """Per class, the PublicTest faces the pipeline labels right in both slots with MIN_CONFIDENCE."""
    from edge.pipeline import Pipeline

    background = _room(TWO_FACES_SIZE, 7)
    found: dict[str, list[np.ndarray]] = {}
    with Pipeline.from_defaults(smooth=False, emotion_model=model, model_path=detector_model) as pipe:
        for cls in CANDIDATE_CLASSES:
            for path in sorted((fer_test / cls).glob("PublicTest_*.jpg"))[:CANDIDATES_PER_CLASS]:
                face = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
                if face is None:
                    continue
                ok = True
                for slot in SLOTS:
                    pipe.reset()
                    r = pipe.process(_two_face_frame(background, {slot: face}, 0), index=0, t=0.0)
                    if not (len(r.faces) == 1 and r.emotions[0] == cls and r.confidences[0] >= MIN_CONFIDENCE
                            and _box_fits_slot(r.faces.xyxy[0], SLOTS[slot])):
                        ok = False
                        break
                if ok:
                    found.setdefault(cls, []).append(face)
    return found


def make_two_face_video(fer_test: Path, path: Path, model: str | None = None,
                        detector_model: str | None = None) -> TwoFaceTruth:
    """Write the two-face video; ValueError when the model is confident on too few faces."""
    from benchmarks.scenes.synthetic import open_writer

    confident = confident_faces(fer_test, model, detector_model)
    usable = sorted((c for c, v in confident.items() if len(v) >= 2), key=lambda c: -len(confident[c]))
    if len(usable) < 2:
        raise ValueError(f"the model labels too few FER-2013 PublicTest faces confidently for the video: "
                         f"{ {c: len(v) for c, v in confident.items()} } (it needs 2 faces in each of 2 classes)")
    x, y = usable[:2]
    sequence = {"A": (confident[x][0], confident[y][0]), "B": (confident[x][1], confident[y][1])}
    writer, written = open_writer(path, TWO_FACES_FPS, TWO_FACES_SIZE)
    background = _room(TWO_FACES_SIZE, 7)
    rng = np.random.default_rng(3)
    try:
        for i in range(int(TWO_FACES_SECONDS * TWO_FACES_FPS)):
            t = i / TWO_FACES_FPS
            faces = {name: pair[0] if t < SWITCH_S[name] else pair[1] for name, pair in sequence.items()}
            writer.write(_two_face_frame(background, faces, i, rng))
    finally:
        writer.release()
    return TwoFaceTruth(video=written, seconds=TWO_FACES_SECONDS, slots=dict(SLOTS),
                        labels={"A": (x, y), "B": (x, y)}, switch_s=dict(SWITCH_S))


# --------------------------------------------------------------------------- a panel of three people

CAST = (  # per place: the person, and the expressions (folders of wild/) shown in turn
    ("George_W_Bush", ("neutral", "happy", "surprise", "neutral")),
    ("HrithikRoshan", ("sad", "happy", "disgust", "surprise")),
    ("Jennifer_Capriati", ("angry", "surprise", "angry", "surprise")),
)
PANEL_SIZE = (1280, 720)
PANEL_FPS = 15.0
PANEL_PLACES = ((20, 170), (440, 120), (860, 180))
SEGMENT_S = 4.0  # each photo stays this long
SIDE = 400
HIDDEN_S = (6.5, 7.5)  # the middle place is covered during this time


def _photos(data: Path, person: str, labels: tuple[str, ...], found) -> list[np.ndarray]:
    """Per label, the first photo of the person that found(photo) accepts, resized to SIDE."""
    used: set[Path] = set()
    out = []
    for label in labels:
        for path in sorted((data / label).glob(f"{person}_*.jpg")):
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if path in used or image is None:
                continue
            image = cv2.resize(image, (SIDE, SIDE), interpolation=cv2.INTER_AREA)
            if found(image):
                used.add(path)
                out.append(image)
                break
        else:
            raise ValueError(f"no {label} photo of {person} in {data}/{label} in which a face is found")
    return out


def _paste(frame: np.ndarray, photo: np.ndarray, x: int, y: int) -> None:
    """Blend the photo in with soft edges, so no hard square frames the face."""
    from benchmarks.scenes.synthetic import feather_mask

    alpha = feather_mask(SIDE, SIDE * 0.08)[..., None]
    roi = frame[y:y + SIDE, x:x + SIDE].astype(np.float32)
    frame[y:y + SIDE, x:x + SIDE] = (roi * (1 - alpha) + photo.astype(np.float32) * alpha + 0.5).astype(np.uint8)


def make_panel_video(data: Path, path: Path, model: str | None = None) -> tuple[Path, float]:
    """Write the panel video; returns (the file written, its length in seconds)."""
    from benchmarks.scenes.synthetic import open_writer
    from edge.pipeline import Pipeline

    background = _room(PANEL_SIZE, 11)
    # The demo is about the report, not the detector: only photos in which the detector finds
    # the face where the video shows it (tight crops of a face are sometimes missed).
    with Pipeline.from_defaults(emotion_model=model) as pipe:
        def finder(x: int, y: int):
            def found(photo: np.ndarray) -> bool:
                frame = background.copy()
                _paste(frame, photo, x, y)
                pipe.reset()
                return len(pipe.process(frame, index=0, t=0.0).faces) == 1
            return found

        casts = [_photos(data, person, labels, finder(*place)) for (person, labels), place in zip(CAST, PANEL_PLACES)]
    seconds = SEGMENT_S * max(len(c) for c in casts)
    writer, written = open_writer(path, PANEL_FPS, PANEL_SIZE)
    rng = np.random.default_rng(5)
    try:
        for i in range(int(seconds * PANEL_FPS)):
            t = i / PANEL_FPS
            frame = background.copy()
            for k, (photos, (x, y)) in enumerate(zip(casts, PANEL_PLACES)):
                dx = int(round(8 * math.sin(t * 0.9 + 2 * k)))
                dy = int(round(5 * math.sin(t * 0.6 + k)))
                _paste(frame, photos[min(int(t // SEGMENT_S), len(photos) - 1)], x + dx, y + dy)
            if HIDDEN_S[0] <= t < HIDDEN_S[1]:  # someone walks in front of the middle face
                x, y = PANEL_PLACES[1]
                cv2.rectangle(frame, (x - 10, y - 20), (x + SIDE + 10, y + SIDE + 20), (60, 70, 90), -1)
            writer.write(np.clip(frame + rng.normal(0, 2.0, frame.shape), 0, 255).astype(np.uint8))
    finally:
        writer.release()
    return written, seconds


# --------------------------------------------------------------------------- command line


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.demos.timeline", description=__doc__.split("\n\n")[0],
                                formatter_class=HelpFormatter)
    p.add_argument("scene", choices=("two-faces", "panel"))
    p.add_argument("--out", required=True, help="the report folder (timeline.png, ...) and the video")
    p.add_argument("--fer", default=default_data_path(), help="FER-2013 folder (two-faces)")
    p.add_argument("--wild", default=str(Path(default_data_path()).parent / "wild"),
                   help="the wild/ photo folders (panel)")
    p.add_argument("--model", default=None, help="emotion .tflite with its .json sidecar (default: the shipped one)")
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    try:
        if args.scene == "two-faces":
            truth = make_two_face_video(Path(args.fer) / "test", out / "two_faces.mp4", args.model)
            video = truth.video
            print(f"wrote {video}: {truth.seconds:g} s; A: {truth.labels['A'][0]} -> {truth.labels['A'][1]} at "
                  f"{truth.switch_s['A']:g} s, B: {truth.labels['B'][0]} -> {truth.labels['B'][1]} at "
                  f"{truth.switch_s['B']:g} s", file=sys.stderr)
        else:
            video, seconds = make_panel_video(Path(args.wild), out / "panel.mp4", args.model)
            print(f"wrote {video}: {seconds:g} s, 3 people: "
                  + "; ".join(f"{person}: {' -> '.join(labels)}" for person, labels in CAST), file=sys.stderr)
    except (ValueError, OSError) as exc:
        print(f"timeline_demo: error: {exc}", file=sys.stderr)
        return 2
    from edge.cli import main as fer_edge

    return fer_edge(["run", "--source", str(video), "--headless", "--jsonl", str(out / "run.jsonl"),
                     "--report", str(out), *(["--model", args.model] if args.model else [])])


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark videos made of real photographs, for speed comparisons on real faces and backgrounds.

    python -m benchmarks.photos.videos --photos PHOTOS --out reports/photo_videos
    fer-edge bench --source reports/photo_videos/interview_640x360.mp4 --peer on

The synthetic scene videos (benchmarks.scenes.synthetic) paste tight 48x48 FER-2013 crops on flat
rooms: BlazeFace misses many of them when they are small, and the peer's Haar cascade runs
faster on those plain frames than on camera footage. These videos put whole labelled photos
(`root/<class>/<image>`) on a blurred fill of themselves, as a video
call shows a portrait, with a slow pan and zoom so that no two frames are alike:

- interview_640x360: one photo of 200-240 px (a face of ~120-200 px);
- clip_720x480: one photo of 260-300 px;
- crowd_1920x1080: eight photos of 150-220 px in two rows (faces of ~60-150 px).

They stand in for the real videos of issue 10, which are not on this machine; they are photos
in motion, not camera video, so they say nothing about motion blur or compression artefacts.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from benchmarks.photos.accuracy import load_labelled_folder
from benchmarks.scenes.synthetic import open_writer


@dataclass(frozen=True)
class PhotoVideo:
    name: str
    size: tuple[int, int]  # (width, height)
    photos: int  # photos per frame
    side_px: tuple[int, int]  # side of each photo in the frame, min and max


VIDEOS = (
    PhotoVideo("interview_640x360", (640, 360), 1, (200, 240)),
    PhotoVideo("clip_720x480", (720, 480), 1, (260, 300)),
    PhotoVideo("crowd_1920x1080", (1920, 1080), 8, (150, 220)),
)


def _blurred_fill(photo_bgr: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(h, w, 3) uint8 BGR: the photo scaled to cover the frame and blurred to soft blobs of its
    tones, like a call's letterbox (blurred enough that no detector sees a face in it)."""
    w, h = size
    ph, pw = photo_bgr.shape[:2]
    scale = max(w / pw, h / ph)
    big = cv2.resize(photo_bgr, (max(w, round(pw * scale)), max(h, round(ph * scale))), interpolation=cv2.INTER_LINEAR)
    y0, x0 = (big.shape[0] - h) // 2, (big.shape[1] - w) // 2
    small = cv2.resize(big[y0:y0 + h, x0:x0 + w], (max(1, w // 48), max(1, h // 48)), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def make_photo_video(photo_paths: list[Path], out: Path, video: PhotoVideo, *, n_frames: int = 150, fps: float = 15.0,
                     seed: int = 0) -> dict:
    """Write `video` from the first `video.photos` of photo_paths; returns its description (also
    written beside it as .json: the photos used and where each sits in the first frame)."""
    w, h = video.size
    rng = np.random.default_rng(seed)
    photos = [cv2.imread(str(p)) for p in photo_paths[:video.photos]]
    if len(photos) < video.photos or any(p is None for p in photos):
        raise ValueError(f"{video.name}: needs {video.photos} readable photos, got {len(photos)}")
    sides = rng.integers(video.side_px[0], video.side_px[1] + 1, size=video.photos)
    # Slots: one photo centred; several in two rows, evenly spread, each with a small drift.
    rows = 1 if video.photos == 1 else 2
    cols = math.ceil(video.photos / rows)
    places = []
    for i, side in enumerate(sides):
        r, c = divmod(i, cols)
        cx = (c + 0.5) * w / cols
        cy = (r + 0.5) * h / rows
        places.append((cx, cy, int(side)))
    fill = _blurred_fill(photos[0] if video.photos == 1 else np.concatenate(
        [cv2.resize(p, (96, 96)) for p in photos], axis=1), video.size)
    phase = rng.uniform(0, 2 * np.pi, size=(video.photos, 2))
    writer, path = open_writer(out, fps, video.size)
    boxes = []
    try:
        for f in range(n_frames):
            t = f / max(1, n_frames - 1)
            frame = fill.copy()
            zoom = 1.0 + 0.08 * np.sin(np.pi * t)  # a slow push in and back out
            for i, (photo, (cx, cy, side)) in enumerate(zip(photos, places)):
                s = min(int(round(side * zoom)), h, w)
                dx = 12 * np.sin(2 * np.pi * t + phase[i, 0])
                dy = 6 * np.sin(2 * np.pi * t + phase[i, 1])
                x0 = int(np.clip(round(cx - s / 2 + dx), 0, w - s))
                y0 = int(np.clip(round(cy - s / 2 + dy), 0, h - s))
                frame[y0:y0 + s, x0:x0 + s] = cv2.resize(photo, (s, s), interpolation=cv2.INTER_AREA
                                                         if s < photo.shape[0] else cv2.INTER_LINEAR)
                if f == 0:
                    boxes.append([x0, y0, x0 + s, y0 + s])
            writer.write(frame)
    finally:
        writer.release()
    info = {"video": path.name, "size": list(video.size), "frames": n_frames, "fps": fps,
            "photos": [str(p) for p in photo_paths[:video.photos]], "photo_boxes_first_frame": boxes}
    path.with_suffix(".json").write_text(json.dumps(info, indent=2) + "\n")
    return info


def _min_side(path: Path) -> int:
    image = cv2.imread(str(path))
    return 0 if image is None else min(image.shape[:2])


def make_all(photos_root: str | Path, out_dir: str | Path, *, n_frames: int = 150, seed: int = 0) -> list[Path]:
    """Every video of VIDEOS from the labelled photo folder; photos are drawn at random (seeded)
    among those at least 300 px on a side, so that none is blown up from a thumbnail."""
    photos = load_labelled_folder(photos_root)
    rng = np.random.default_rng(seed)
    candidates = [p for p in photos.paths if _min_side(p) >= 300]
    if len(candidates) < max(v.photos for v in VIDEOS):
        raise ValueError(f"{photos_root}: only {len(candidates)} photos are at least 300 px on a side")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for k, video in enumerate(VIDEOS):
        chosen = [candidates[i] for i in rng.choice(len(candidates), size=video.photos, replace=False)]
        info = make_photo_video(chosen, out / f"{video.name}.mp4", video, n_frames=n_frames, seed=seed + k)
        paths.append(out / info["video"])
    return paths


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.photos.videos", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--photos", required=True, help="labelled photo folder: <class>/<image>")
    ap.add_argument("--out", default="reports/photo_videos", help="output folder")
    ap.add_argument("--frames", type=int, default=150, help="frames per video (10 s at 15 fps)")
    ap.add_argument("--seed", type=int, default=0, help="which photos, sizes and drifts")
    args = ap.parse_args(argv)
    try:
        for p in make_all(args.photos, args.out, n_frames=args.frames, seed=args.seed):
            print(p)
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

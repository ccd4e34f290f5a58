"""The scene benchmark: end-to-end accuracy of the real pipeline on synthetic videos with known faces.

Synthetic videos (benchmarks.scenes.synthetic) go through the real Pipeline (detector, shared crop,
int8 classifier, tracker), twice: smoothing on and off. Every placed face is matched to a
detection by IoU; the report separates what each stage costs:

- crop accuracy: the classifier on the original 48x48 crops of the matched faces;
- oracle accuracy: the classifier on the true square cut from the decoded frame (codec,
  up- and down-scaling; no detector);
- accuracy: the pipeline's label on matched faces (detector box + crop policy);
- agreement: the pipeline's label vs the classifier's on the original crop.

Flips count label changes between consecutive frames in which a placed face was found; each
placed face has one constant label, so every flip is flicker. The report: markdown (the table the
docs quote), plot, files, and rows for the results table of `fer-edge bench all`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common.outputs import pyplot, save_figure, write_report_files
from benchmarks.common.samples import rate
from benchmarks.scenes.synthetic import (DEFAULT_FEATHER, MATCH_IOU, make_scene_video, match_placed_faces,
                                         truth_frames, truth_path)
from edge.labels import dataset_index
from edge.pipeline import PipelineConfig
from train.data import default_data_path

DEFAULT_DATA = default_data_path()
DEFAULT_OUT = "reports/scenes"
# The placed square holds the whole FER crop, face plus margin, so a detector box (the face
# only) inside it has IoU ~ (box/square)^2: 0.45-0.8 for well-found faces. 0.3 accepts a box
# a bit more than half the square's side that sits inside it, and rejects boxes on a neighbour
# or on background (faces never overlap, so a box cannot straddle two faces).
SIZE_BUCKETS = (0, 100, 150, 200, 10_000)  # placed square side, px
MODES = {"smooth_off": False, "smooth_on": True}  # report key -> TrackerConfig.smooth (PipelineConfig.tracker)


class _Tally:
    """Everything one benchmark run counts, in columns, filled frame by frame."""

    def __init__(self, classifier, images: np.ndarray):
        self.classifier = classifier
        self.images = images
        self.to_ds = dataset_index(classifier.labels)  # model column -> FER-2013 label index
        self._original: dict[int, int] = {}  # src -> the classifier's label on the original crop
        # Per mode, per matched face instance.
        self.rows = {m: {k: [] for k in ("video", "frame", "face", "src", "label", "pred", "iou", "track")}
                     for m in MODES}
        self.det = {"tp": 0, "fp": 0, "fn": 0}
        self.placed_sides: list[int] = []
        self.found_flags: list[bool] = []
        self.oracle_pred: list[int] = []
        self.oracle_label: list[int] = []
        self.oracle_src: list[int] = []
        self.oracle_at: dict[tuple[int, int, int], int] = {}  # (video, frame, face id) -> oracle label
        self.per_video: list[dict] = []

    def original(self, src: int) -> int:
        """The classifier's label (dataset index) on the original crop `src`, computed once."""
        if src not in self._original:
            probs = self.classifier.classify(self.images[src:src + 1])[0]
            self._original[src] = int(self.to_ds[np.argmax(probs)])
        return self._original[src]

    def add_oracle(self, v: int, i: int, placed, image: np.ndarray) -> np.ndarray:
        """The classifier on the true squares of frame i of video v; returns the squares (xyxy)."""
        from edge.classify.preprocess import CropPolicy, crop_face, to_gray

        tboxes = np.array([f.box for f in placed])
        gray = to_gray(image)
        spec = self.classifier.spec
        oracle = np.stack([crop_face(gray, b, spec, CropPolicy()) for b in tboxes])
        o_pred = self.to_ds[np.argmax(self.classifier.classify(oracle), axis=1)].tolist()
        self.oracle_pred += o_pred
        self.oracle_at.update({(v, i, f.id): p for f, p in zip(placed, o_pred)})
        self.oracle_label += [f.label for f in placed]
        self.oracle_src += [f.src for f in placed]
        return tboxes

    def add_result(self, mode: str, v: int, i: int, placed, tboxes: np.ndarray, result, iou_threshold: float) -> None:
        """One mode's pipeline result on frame i of video v, matched to the placed squares."""
        ti, di, ious = match_placed_faces(tboxes, result.faces.xyxy, iou_threshold)
        preds = self.to_ds[result.label_index]
        r = self.rows[mode]
        for t, d, u in zip(ti, di, ious):
            f = placed[t]
            for key, value in (("video", v), ("frame", i), ("face", f.id), ("src", f.src), ("label", f.label),
                               ("pred", int(preds[d])), ("iou", float(u)), ("track", int(result.track_ids[d]))):
                r[key].append(value)
        if mode == "smooth_off":  # detection is the same in both runs
            self.det["tp"] += len(ti)
            self.det["fp"] += len(result.faces) - len(ti)
            self.det["fn"] += len(placed) - len(ti)
            hit = set(ti.tolist())
            self.placed_sides += [f.box[2] - f.box[0] for f in placed]
            self.found_flags += [k in hit for k in range(len(placed))]

    def detection(self, iou_threshold: float) -> dict:
        sides = np.array(self.placed_sides)
        found = np.array(self.found_flags, bool)
        by_size = []
        for lo, hi in zip(SIZE_BUCKETS[:-1], SIZE_BUCKETS[1:]):
            sel = (sides >= lo) & (sides < hi)
            by_size.append({"side_px": [lo, hi], "placed": int(sel.sum()), "recall": rate(found[sel].sum(), sel.sum())})
        det, ious = self.det, self.rows["smooth_off"]["iou"]
        return {"iou_threshold": iou_threshold, "placed": int(len(found)), "tp": det["tp"], "fp": det["fp"],
                "fn": det["fn"], "recall": rate(det["tp"], det["tp"] + det["fn"]),
                "precision": rate(det["tp"], det["tp"] + det["fp"]),
                "mean_iou": float(np.mean(ious)) if ious else None,
                "iou_p5_p50_p95": [float(v) for v in np.percentile(ious, [5, 50, 95])] if ious else None,
                "recall_by_size": by_size}

    def all_placed(self) -> dict:
        pred, label = np.array(self.oracle_pred), np.array(self.oracle_label)
        orig = np.array([self.original(int(s)) for s in self.oracle_src])
        n = len(label)
        return {"n": int(n), "distinct_faces": int(sum(v["faces"] for v in self.per_video)),
                "crop_accuracy": rate((orig == label).sum(), n), "oracle_accuracy": rate((pred == label).sum(), n),
                "oracle_agreement": rate((pred == orig).sum(), n)}

    def mode(self, mode: str, fps: float) -> dict:
        r = {k: np.array(v) for k, v in self.rows[mode].items()}
        n = len(r["src"])
        orig = np.array([self.original(int(s)) for s in r["src"]], np.int64)
        flips, seconds, switches, tracks = 0, 0.0, 0, 0
        for video, face in sorted(set(zip(r["video"].tolist(), r["face"].tolist()))):
            sel = (r["video"] == video) & (r["face"] == face)
            seq = r["pred"][sel][np.argsort(r["frame"][sel])]
            flips += int((seq[1:] != seq[:-1]).sum())
            seconds += len(seq) / fps
            switches += len(set(r["track"][sel].tolist())) - 1
            tracks += 1
        oracle = np.array([self.oracle_at[(int(a), int(b), int(c))] for a, b, c in zip(r["video"], r["frame"], r["face"])])
        return {"matched": n, "distinct_faces": tracks, "accuracy": rate((r["pred"] == r["label"]).sum(), n),
                "oracle_accuracy": rate((oracle == r["label"]).sum(), n), "agreement": rate((r["pred"] == orig).sum(), n),
                "crop_accuracy": rate((orig == r["label"]).sum(), n), "flips": flips, "track_seconds": seconds,
                "tracks": tracks, "flips_per_track_s": rate(flips, seconds), "track_id_switches": switches}


def _targets(off: dict, on: dict) -> dict:
    # Positive: the pipeline beats the original crops; the target is "no more than 2 points worse".
    gap = None if off["accuracy"] is None else off["accuracy"] - off["crop_accuracy"]
    ratio = None
    if off["flips_per_track_s"] is not None and on["flips_per_track_s"]:
        ratio = off["flips_per_track_s"] / on["flips_per_track_s"]
    elif off["flips_per_track_s"]:
        ratio = float("inf")
    return {"accuracy_gap_points": None if gap is None else 100 * gap,
            "accuracy_within_2_points": None if gap is None else bool(gap >= -0.02),
            "flip_reduction": ratio, "flips_reduced_3x": None if ratio is None else bool(ratio >= 3)}


def _load_faces(faces, data: str, split: str) -> tuple[np.ndarray, np.ndarray, str]:
    if faces is not None:
        images, labels = faces
        return images, np.asarray(labels, np.int64), "given faces"
    from train.data import load_fer2013

    s = load_fer2013(data).split(split)
    return s.images, np.asarray(s.labels, np.int64), f"FER-2013 {split} ({data})"


def run_scene_benchmark(*, out: str | Path | None = DEFAULT_OUT, n_videos: int = 40, n_frames: int = 45,
                        seed: int = 0, pipeline: PipelineConfig | None = None, data: str = DEFAULT_DATA,
                        split: str = "private", size: tuple[int, int] = (640, 480),
                        faces_per_frame: tuple[int, int] = (1, 4), face_px: tuple[int, int] = (60, 300),
                        fps: float = 15.0, iou_threshold: float = MATCH_IOU, keep_videos: bool = True,
                        faces=None, crop=None, progress: bool = False) -> dict:
    """Make synthetic videos, run the real Pipeline on them (smoothing on and off), report accuracy.

    pipeline: the pipeline to measure (default: PipelineConfig()); its `smooth` is set per mode.

    faces: optional (images (n,48,48) uint8, labels (n,)) instead of loading `split` from `data`.
    crop: an edge.classify.preprocess.CropPolicy to use instead of the model sidecar's (to measure a
    calibration before it is written into a sidecar).
    Each video keeps its 1-4 faces throughout (one track each), so the number of distinct faces
    is what bounds the accuracy figures: many short videos beat a few long ones.
    Videos go to out/videos (deleted afterwards unless keep_videos; a temp folder when out is
    None). Returns the report dict (see `scene_markdown` for what the fields mean).
    """
    from edge.pipeline import Pipeline

    t_start = time.perf_counter()
    pipeline = pipeline or PipelineConfig()
    images, labels, source = _load_faces(faces, data, split)
    with contextlib.ExitStack() as stack:
        if out is None:
            video_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="fer-edge-scenes-")))
        else:
            video_dir = Path(out) / "videos"
            video_dir.mkdir(parents=True, exist_ok=True)
        pipes = {m: stack.enter_context(Pipeline.from_config(pipeline.replace(smooth=on)))
                 for m, on in MODES.items()}
        if crop is not None:
            for pipe in pipes.values():
                # The pipeline crops with its card's policy; a replaced card changes only that.
                pipe.card = dataclasses.replace(pipe.card, crop=crop)
        bar = None
        if progress:
            from tqdm import tqdm

            bar = stack.enter_context(tqdm(total=n_videos * n_frames, unit="frame", desc="scenes"))
        tally = _Tally(pipes["smooth_off"].classifier, images)
        for v in range(n_videos):
            truth = make_scene_video(video_dir / f"scene_{v:02d}.mp4", images, labels, n_frames=n_frames, size=size,
                                     faces_per_frame=faces_per_frame, face_px=face_px, fps=fps,
                                     seed=seed * 10_000 + v, source=source)
            path = video_dir / truth.video
            tally.per_video.append({"video": str(path), "background": truth.background, "faces": len(truth.frames[0]),
                                    "sides": [f.box[2] - f.box[0] for f in truth.frames[0]]})
            for pipe in pipes.values():
                pipe.reset()
            for i, placed, image in truth_frames(path, truth):
                tboxes = tally.add_oracle(v, i, placed, image)
                for m, pipe in pipes.items():
                    tally.add_result(m, v, i, placed, tboxes, pipe.process(image, index=i, t=i / fps), iou_threshold)
                if bar is not None:
                    bar.update(1)
            if not keep_videos:
                path.unlink(missing_ok=True)
                truth_path(path).unlink(missing_ok=True)
        card, classifier = pipes["smooth_off"].card, pipes["smooth_off"].classifier
    report = {"detection": tally.detection(iou_threshold), "all_placed": tally.all_placed(),
              **{m: tally.mode(m, fps) for m in MODES}}
    report["targets"] = _targets(report["smooth_off"], report["smooth_on"])
    report["settings"] = {"videos": n_videos, "frames": n_frames, "fps": fps, "seed": seed, "size": list(size),
                          "faces_per_frame": list(faces_per_frame), "face_px": list(face_px), "source": source,
                          "detector": pipeline.detector.backend, "range": pipeline.detector.range, "model": str(classifier.model_path),
                          "model_metrics": card.metrics, "crop": card.crop.to_json(),
                          "crop_from": "sidecar" if crop is None else "override",
                          "feather": DEFAULT_FEATHER, "iou_threshold": iou_threshold}
    report["videos"] = tally.per_video
    report["elapsed_s"] = time.perf_counter() - t_start
    return report


def run_scenes_bench(out_dir: str | Path = DEFAULT_OUT, data: str = DEFAULT_DATA, pipeline: PipelineConfig | None = None,
                     progress: bool = False, **kwargs) -> dict:
    """The default scene benchmark for `fer-edge bench all`: runs, writes out_dir/scenes.*, and returns
    the report with "markdown" (its section) and "summary_rows" (results-table rows) added."""
    report = run_scene_benchmark(out=out_dir, data=data, pipeline=pipeline, progress=progress, **kwargs)
    model = pipeline.emotion_model if pipeline is not None else None
    command = f"fer-edge bench scenes --out {out_dir}" + (f" --model {model}" if model else "")
    write_scene_report(report, out_dir, command)
    return {**report, "markdown": scene_markdown(report, command), "summary_rows": summary_rows(report)}


# ---------------------------------------------------------------- report

def _p(v) -> str:
    return "-" if v is None else f"{100 * v:.1f}%"


def scene_markdown(report: dict, command: str = "") -> str:
    """The report as a markdown section (the table the README quotes)."""
    d, a, s = report["detection"], report["all_placed"], report["settings"]
    off, on, tg = report["smooth_off"], report["smooth_on"], report["targets"]
    lines = ["# Scene benchmark (synthetic videos, real pipeline)", ""]
    if command:
        lines += [f"Command: `{command}`", ""]
    lines += [f"{s['videos']} videos x {s['frames']} frames at {s['fps']:g} fps, {s['size'][0]}x{s['size'][1]}, "
              f"{s['faces_per_frame'][0]}-{s['faces_per_frame'][1]} faces per video, placed squares "
              f"{s['face_px'][0]}-{s['face_px'][1]} px; faces from {s['source']}. Detector {s['detector']} "
              f"({s['range']} range); model {s['model']} ({json.dumps(s['model_metrics'])}); crop policy "
              f"{json.dumps(s['crop'])}.", "",
              "| metric | value |", "|---|---|",
              f"| detection recall (IoU >= {d['iou_threshold']}) | {_p(d['recall'])} ({d['tp']}/{d['tp'] + d['fn']}) |",
              f"| detection precision | {_p(d['precision'])} ({d['fp']} false positives) |",
              f"| mean IoU of matched boxes vs placed square | {d['mean_iou']:.3f} |" if d["mean_iou"] is not None
              else "| mean IoU | - |",
              f"| IoU of matched boxes, p5 / p50 / p95 | {' / '.join(f'{v:.2f}' for v in d['iou_p5_p50_p95'])} |"
              if d.get("iou_p5_p50_p95") else "| IoU percentiles | - |",
              f"| distinct faces placed / detected at least once | {a['distinct_faces']} / {off['distinct_faces']} |",
              f"| accuracy on detected faces, smoothing off | {_p(off['accuracy'])} |",
              f"| accuracy on detected faces, smoothing on | {_p(on['accuracy'])} |",
              f"| crop accuracy (classifier on the original 48x48 crops of the detected faces) | {_p(off['crop_accuracy'])} |",
              f"| agreement with the classifier on the original crop, smoothing off / on | {_p(off['agreement'])} / {_p(on['agreement'])} |",
              f"| oracle accuracy on the detected faces (true square cut from the decoded frame) | {_p(off['oracle_accuracy'])} |",
              f"| oracle accuracy, all placed faces | {_p(a['oracle_accuracy'])} |",
              f"| crop accuracy, all placed faces | {_p(a['crop_accuracy'])} |",
              f"| label flips per track per second, smoothing off | {off['flips_per_track_s']:.3f} |"
              if off["flips_per_track_s"] is not None else "| flips off | - |",
              f"| label flips per track per second, smoothing on | {on['flips_per_track_s']:.3f} |"
              if on["flips_per_track_s"] is not None else "| flips on | - |",
              f"| track id switches (off / on) | {off['track_id_switches']} / {on['track_id_switches']} |",
              "", "Recall by placed square side:", "", "| side px | placed | recall |", "|---|---|---|"]
    for b in d["recall_by_size"]:
        hi = "+" if b["side_px"][1] >= 10_000 else f"-{b['side_px'][1] - 1}"
        lines.append(f"| {b['side_px'][0]}{hi} | {b['placed']} | {_p(b['recall'])} |")
    gap = tg["accuracy_gap_points"]
    ratio = tg["flip_reduction"]
    lines += ["", "Targets: accuracy on detected faces (smoothing off) no more than 2 points below the crop "
              "accuracy: " + ("-" if gap is None else f"{gap:+.1f} points ({'met' if tg['accuracy_within_2_points'] else 'NOT met'})")
              + "; flips reduced >= 3x by smoothing: "
              + ("-" if ratio is None else f"{ratio:.1f}x ({'met' if tg['flips_reduced_3x'] else 'NOT met'})") + ".", ""]
    return "\n".join(lines)


def scene_plot(report: dict, path: str | Path) -> Path | None:
    """Recall by face size and the accuracy chain as a PNG; None without matplotlib."""
    plt = pyplot(required=False)
    if plt is None:
        return None
    d = report["detection"]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6))
    names = [f"{b['side_px'][0]}+" if b["side_px"][1] >= 10_000 else f"{b['side_px'][0]}-{b['side_px'][1] - 1}"
             for b in d["recall_by_size"]]
    ax1.bar(names, [100 * (b["recall"] or 0) for b in d["recall_by_size"]], color="tab:blue")
    ax1.set_ylim(0, 100)
    ax1.set_xlabel("placed face square, px")
    ax1.set_ylabel("detection recall, %")
    off, on = report["smooth_off"], report["smooth_on"]
    bars = {"crop acc\n(original)": off["crop_accuracy"], "oracle acc\n(true square)": off["oracle_accuracy"],
            "pipeline acc\nsmooth off": off["accuracy"], "pipeline acc\nsmooth on": on["accuracy"]}
    ax2.bar(list(bars), [100 * (v or 0) for v in bars.values()], color=["gray", "tab:green", "tab:orange", "tab:red"])
    ax2.set_ylim(0, 100)
    ax2.set_ylabel("accuracy on detected faces, %")
    ax2.tick_params(axis="x", labelsize=8)
    return save_figure(fig, path)


def write_scene_report(report: dict, out_dir: str | Path, command: str = "") -> dict[str, Path]:
    """OUT/scenes.json, scenes.md and scenes.png."""
    return write_report_files(out_dir, "scenes", {**report, "command": command}, scene_markdown(report, command),
                              scene_plot)


def summary_rows(report: dict) -> list[str]:
    """Rows for a 4-column results table (| what | fer-edge | peer | ratio |)."""
    d, off, on = report["detection"], report["smooth_off"], report["smooth_on"]
    n = d["placed"]
    fo, fn = off["flips_per_track_s"], on["flips_per_track_s"]
    return [
        f"| synthetic scenes ({n} placed faces): detection recall / precision | {_p(d['recall'])} / "
        f"{_p(d['precision'])} | | |",
        f"| synthetic scenes: accuracy on detected faces vs the classifier on their original crops | "
        f"{_p(off['accuracy'])} vs {_p(off['crop_accuracy'])} | | |",
        "| synthetic scenes: label flips per track per second, smoothing on / off | "
        + ("-" if fn is None else f"{fn:.3f}") + " / " + ("-" if fo is None else f"{fo:.3f}") + " | | |",
    ]


# ---------------------------------------------------------------- CLI

def register(sub) -> None:
    """Add `scenes` to the `fer-edge bench` subparsers."""
    from edge.cli import HelpFormatter, int_pair
    from edge.cli.pipeline_flags import add_pipeline_args

    p = sub.add_parser("scenes", help="end-to-end accuracy on synthetic videos with known faces",
                       description="Paste FER-2013 faces (PrivateTest by default) into synthetic videos at known "
                       "places, run the real pipeline on them with smoothing on and off, and report detection "
                       "recall/precision, accuracy on detected faces against the labels and against the classifier "
                       "on the original crops, and label flips per track per second.",
                       formatter_class=HelpFormatter)
    p.add_argument("--out", default=DEFAULT_OUT, help="folder for scenes.json/.md/.png and videos/")
    p.add_argument("--videos", type=int, default=40, help="number of synthetic videos (each with 1-4 new faces)")
    p.add_argument("--frames", type=int, default=45, help="frames per video")
    p.add_argument("--fps", type=float, default=15.0, help="frame rate of the videos")
    p.add_argument("--seed", type=int, default=0, help="seed of the scenes (faces, places, backgrounds)")
    add_pipeline_args(p, groups=("detector", "model"))
    p.add_argument("--data", default=DEFAULT_DATA, help="fer2013.csv or a folder with train/ and test/")
    p.add_argument("--split", choices=("public", "private"), default="private", help="which test faces to place")
    p.add_argument("--size", type=int_pair, default=(640, 480), help="frame size WxH (default: 640x480)")
    p.add_argument("--faces-per-frame", type=int_pair, default=(1, 4), help="faces per video: N or MIN,MAX (default: 1,4)")
    p.add_argument("--face-px", type=int_pair, default=(60, 300), help="placed square side range MIN,MAX px (default: 60,300)")
    p.add_argument("--iou", type=float, default=MATCH_IOU, help="IoU to count a detection as a placed face")
    p.add_argument("--crop-margin", type=float, default=None, help="crop margin (default: the sidecar's)")
    p.add_argument("--crop-shift-y", type=float, default=None, help="crop shift_y (default: the sidecar's)")
    p.add_argument("--crop-align", choices=("on", "off"), default=None, help="eye alignment (default: the sidecar's)")
    p.add_argument("--no-keep-videos", action="store_true", help="delete the videos after the run")
    p.set_defaults(func=_cmd_scenes)


def _cmd_scenes(args) -> int:
    from edge.cli import CliError, command_line
    from edge.cli.pipeline_flags import config_from_args
    from train.data import DataError

    if args.videos < 1 or args.frames < 1:
        raise CliError("--videos and --frames must be >= 1")
    pipeline = config_from_args(args)
    crop = None
    if args.crop_margin is not None or args.crop_shift_y is not None or args.crop_align is not None:
        from edge.models.registry import default_emotion_model
        from edge.classify.preprocess import CropPolicy
        from edge.classify.sidecar import load_sidecar

        base = load_sidecar(pipeline.emotion_model or default_emotion_model()).crop
        crop = CropPolicy(margin=base.margin if args.crop_margin is None else args.crop_margin,
                          shift_y=base.shift_y if args.crop_shift_y is None else args.crop_shift_y,
                          align=base.align if args.crop_align is None else args.crop_align == "on")
    try:
        report = run_scene_benchmark(out=args.out, n_videos=args.videos, n_frames=args.frames, seed=args.seed,
                                     pipeline=pipeline, data=args.data, split=args.split, size=args.size,
                                     faces_per_frame=args.faces_per_frame, face_px=args.face_px, fps=args.fps,
                                     iou_threshold=args.iou, keep_videos=not args.no_keep_videos, crop=crop,
                                     progress=True)
    except (FileNotFoundError, ValueError, DataError) as exc:
        raise CliError(str(exc)) from None
    command = command_line()
    paths = write_scene_report(report, args.out, command)
    print(scene_markdown(report, command))
    print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0

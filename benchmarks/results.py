"""`fer-edge bench all`: the one command that reproduces the README's results table.

    fer-edge bench all --out reports/

1. Writes two benchmark videos from FER-2013 PrivateTest crops with benchmarks.scenes.synthetic
   (OUT/videos/one_face_640x480.mp4: one face; OUT/videos/two_faces_640x360.mp4: two faces).
2. Runs the pipeline benchmark on both (and the peer `fer` on the same frames when installed).
3. Runs the classifier micro-benchmark on every model variant (and the peer's classifier).
4. Runs the end-to-end scenes accuracy (benchmarks.scenes.accuracy; --scenes off skips it), and a soak on request.
5. Writes OUT/RESULTS.md (the table) and one JSON (+ .md, .png) per benchmark.

The default run takes a few minutes on two cores.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.speed import classifier as bc
from benchmarks.speed import pipeline as bp
from edge.pipeline import PipelineConfig

log = logging.getLogger(__name__)

VIDEOS = (
    # (name, size, faces per frame, face side px range)
    ("one_face_640x480", (640, 480), 1, (220, 300)),
    ("two_faces_640x360", (640, 360), 2, (150, 180)),
)
VIDEO_FRAMES = 150  # rewound as needed; 10 s at 15 fps
MAX_SEED_TRIES = 40


def _detectors():
    """Detect functions image_bgr -> face count: ours (BlazeFace) and the peer's Haar when installed."""
    from edge.detect.factory import DetectorConfig, make_detector

    from benchmarks.common import peer as peer_mod

    fns = [lambda img, d=make_detector(DetectorConfig(scan="frame")): len(d.detect(img))]
    if peer_mod.available():
        import cv2

        cascade = cv2.CascadeClassifier(str(peer_mod.peer_data_dir() / "haarcascade_frontalface_default.xml"))

        def haar(img):  # the parameters fer uses
            gray = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
            return len(cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, flags=cv2.CASCADE_SCALE_IMAGE,
                                                minSize=(50, 50)))
        fns.append(haar)
    return fns


def make_videos(out_dir: Path, crops: np.ndarray, labels: np.ndarray, seed: int = 0) -> dict[str, Path]:
    """The benchmark videos (with truth files), made once and reused when they exist.

    The seed of each video is the first one (from `seed` on) whose first frame every detector
    (ours, and the peer's Haar cascade when installed) finds all placed faces in, so that both
    sides do the whole per-face work; faces per frame are reported beside every figure.
    """
    from benchmarks.scenes.synthetic import make_scene_video
    from edge.capture.readers import read_video_frames

    paths = {}
    detectors = None
    for name, size, n_faces, face_px in VIDEOS:
        target = out_dir / f"{name}.mp4"
        existing = [p for p in (target, target.with_suffix(".avi")) if p.is_file()]
        if existing:
            paths[name] = existing[0]
            continue
        detectors = detectors or _detectors()
        kw = dict(size=size, faces_per_frame=n_faces, face_px=face_px, background="room", source="fer2013 private")
        chosen = seed
        for s in range(seed, seed + MAX_SEED_TRIES):
            probe = make_scene_video(out_dir / f"_probe_{name}.mp4", crops, labels, n_frames=1, seed=s,
                                     write_truth_file=False, **kw)
            frame = read_video_frames(out_dir / probe.video)[0]
            (out_dir / probe.video).unlink()
            if all(fn(frame) == n_faces for fn in detectors):
                chosen = s
                break
        else:
            log.warning("%s: no seed in %d tries where every detector finds the faces; using seed %d",
                        name, MAX_SEED_TRIES, seed)
        truth = make_scene_video(target, crops, labels, n_frames=VIDEO_FRAMES, seed=chosen, **kw)
        log.info("%s: seed %d", name, chosen)
        paths[name] = target.parent / truth.video
    return paths


def run_all(*, out_dir: str | os.PathLike = "reports", data: str | None = None, frames: int = 300,
            pipeline: PipelineConfig | None = None, models_dir: str | None = None,
            classifier_iters: int = 300, soak_frames: int = 0, peer: str = "auto", scenes: str = "auto",
            limit: int | None = None, progress: bool = True) -> dict[str, Path]:
    """Run every benchmark of the results table; returns the paths written (key "results": RESULTS.md).

    pipeline: the pipeline the pipeline, soak and scene runs build (default: PipelineConfig()).
    """
    pipeline = pipeline or PipelineConfig()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    if data is None:
        from train.data import default_data_path

        data = default_data_path()
    crops, labels = bc.load_private_test(data, limit=limit)
    written: dict[str, Path] = {}
    videos = make_videos(out / "videos", crops[:200], labels[:200])

    pipeline_reports = {}
    for name, video in videos.items():
        log.info("pipeline benchmark on %s", video)
        cfg = bp.BenchConfig(source=str(video), pipeline=pipeline, frames=frames, peer=peer)
        rep = bp.run_pipeline_bench(cfg, progress=progress)
        paths = bp.write_outputs(rep, out / f"pipeline_{name}.json")
        written.update({f"pipeline_{name}_{k}": v for k, v in paths.items()})
        pipeline_reports[name] = rep

    from edge.models.registry import default_emotion_model

    mdir = Path(models_dir) if models_dir else default_emotion_model().parent
    cls_report = bc.bench_classifier(bc.find_variants(mdir), crops, labels, iters=classifier_iters, peer=peer,
                                     progress=progress)
    written.update({f"classifier_{k}": v for k, v in bc.write_outputs(cls_report, out / "classifier.json").items()})

    soak_report = None
    if soak_frames > 0:
        from benchmarks.speed import soak

        video = videos[VIDEOS[0][0]]
        soak_report = soak.run_soak(bp.BenchConfig(source=str(video), pipeline=pipeline, frames=soak_frames,
                                                   peer="off"), progress=progress)
        written.update({f"soak_{k}": v for k, v in soak.write_outputs(soak_report, out / "soak.json").items()})

    scenes_report = None
    if scenes == "auto":
        from benchmarks.scenes.accuracy import run_scenes_bench

        scenes_report = run_scenes_bench(out / "scenes", data=data, pipeline=pipeline, progress=progress)

    command = "fer-edge bench all " + " ".join(shlex.quote(a) for a in sys.argv[3:]) \
        if sys.argv[1:3] == ["bench", "all"] else "fer-edge bench all --out " + shlex.quote(str(out))
    text = results_markdown(pipeline_reports, cls_report, soak_report, scenes_report, command=command.strip(),
                            elapsed_s=time.perf_counter() - t0)
    results = out / "RESULTS.md"
    results.write_text(text)
    (out / "results.json").write_text(json.dumps(
        {"pipeline": {k: bp.to_json(v) for k, v in pipeline_reports.items()}, "classifier": cls_report,
         "soak": bp.to_json(soak_report) if soak_report else None,
         "scenes": scenes_report if isinstance(scenes_report, dict) else None},
        indent=2, default=str) + "\n")
    written["results"] = results
    written["results_json"] = out / "results.json"
    return written


def _fmt(v, spec: str = ".1f", suffix: str = "") -> str:
    return "n/a" if v is None else f"{format(v, spec)}{suffix}"


def _ratio(a, b) -> str:
    return f"{a / b:.1f}x" if a is not None and b else "n/a"


def results_markdown(pipeline_reports: dict, cls_report: dict, soak_report: dict | None, scenes_report,
                     command: str, elapsed_s: float) -> str:
    """The README results table and the detail tables under it."""
    first = next(iter(pipeline_reports.values()))
    machine = first["machine"]
    model = first["model"]
    peer_name = next((r["peer"]["name"] for r in pipeline_reports.values() if r.get("peer")), None)
    lines = ["# fer-edge benchmark results", "",
             f"Measured by `{command}` in {elapsed_s / 60:.1f} min on {machine['cpu']} "
             f"({machine['cores']} cores, {machine['system']} {machine['machine']}, Python {machine['python']}); "
             f"load average at start {machine['loadavg_1m_at_start']}.",
             f"Emotion model: `{Path(model['path']).name}` ({model.get('quantization', '?')}"
             + (", **PROVISIONAL**" if model.get("provisional") else "") + ").", ""]
    head = "| | fer-edge | " + (f"peer: {peer_name}" if peer_name else "peer (not installed)") + " | ratio |"
    lines += [head, "| --- | ---: | ---: | ---: |"]
    for name, rep in pipeline_reports.items():
        w, h = rep["resolution"]
        faces = rep["faces_per_frame"]["mean"]
        p = rep.get("peer")
        pf = p["fps"] if p else None
        placed = next((n for v, _, n, _ in VIDEOS if v == name), None)
        lines.append(f"| frames/s, {w}x{h} video, {placed or '?'} face(s) placed "
                     f"(found per frame: ours {faces:.2f}" + (f", peer {p['faces_per_frame']['mean']:.2f}" if p else "")
                     + f") | **{rep['fps']:.1f}** | {_fmt(pf)} | **{_ratio(rep['fps'], pf)}** |")
        lines.append(f"| latency p50 / p95 ms, {w}x{h} | {rep['latency_ms']['p50']:.2f} / "
                     f"{rep['latency_ms']['p95']:.2f} | "
                     + (f"{p['latency_ms']['p50']:.1f} / {p['latency_ms']['p95']:.1f}" if p else "n/a") + " | |")
        lines.append(f"| CPU % (100 = one core), {w}x{h} | {rep['cpu_percent']:.0f} | "
                     + (f"{p['cpu_percent']:.0f}" if p else "n/a") + " | |")
        if rep.get("rss_alone_includes_tensorflow"):
            continue  # TensorFlow from an earlier peer run is in the process: no clean figure here
        lines.append(f"| RSS MB, {w}x{h} (fer-edge: after warm-up, before the peer loads; peer: the shared "
                     f"process's peak) | {rep.get('rss_alone_mb', rep['rss_mb']['peak']):.0f} | "
                     + (f"{p['rss_mb']['peak']:.0f} (+{p['rss_mb']['peak'] - rep['rss_alone_mb']:.0f} for fer "
                        "and TensorFlow)" if p and "rss_alone_mb" in rep else "n/a") + " | |")
    best = _best_variant(cls_report)
    cp = cls_report.get("peer")
    if best:
        acc = best.get("accuracy")
        lines.append(f"| classifier accuracy, FER-2013 PrivateTest ({cls_report['n_crops']} crops), "
                     f"{best['name']} | **{_fmt(acc * 100 if acc is not None else None, '.1f', ' %')}** | "
                     f"{_fmt(cp['accuracy'] * 100 if cp and 'accuracy' in cp else None, '.1f', ' %')} | |")
        ms = next((t["ms_per_face"] for t in best["timings"] if t["threads"] == 1 and t["mode"] == "single"), None)
        lines.append(f"| classifier ms per face (1 per call; ours 1 thread, peer its default) | {_fmt(ms, '.3f')} | "
                     f"{_fmt(cp['ms_per_face'] if cp else None, '.3f')} | {_ratio(cp['ms_per_face'] if cp else None, ms)} |")
        lines.append(f"| model file KB | {best['size_kb']:.0f} | {_fmt(cp['size_kb'] if cp else None, '.0f')} | |")
    if soak_report:
        lines.append(f"| RSS growth over {soak_report['frames']} frames (peer off; peak "
                     f"{soak_report['rss_peak_mb']:.0f} MB) | {soak_report['rss_growth_mb']:+.1f} MB | | |")
    if isinstance(scenes_report, dict) and scenes_report.get("summary_rows"):
        for row in scenes_report["summary_rows"]:
            lines.append(row)
    lines += ["", "Targets: frames/s >= 10x the peer's on the same video in the same run; p95 <= 10 ms per frame "
                  "with one face at 640x480; RSS growth < 20 MB over 10,000 frames.", ""]
    if not peer_name:
        from benchmarks.common.peer import install_hint

        lines += [f"The peer did not run: {install_hint()}.", ""]
    else:
        lines += ["The peer is `FER(mtcnn=False)` of the `fer` package: OpenCV Haar cascade + its own TFLite "
                  "emotion model (64x64 float input, dynamic-range quantized, one face per invoke). It runs on the "
                  "same frames (its own reader of the same file) in the same process, alternating with fer-edge "
                  "in blocks of 25 frames so that both get the same share of the machine; fer-edge's frames/s "
                  "include drawing the overlay, the peer's do not. Its classifier accuracy: fer's model comes "
                  "from a training whose split of FER-2013 we cannot check, so PrivateTest may not be unseen "
                  "data for it.", ""]
    for name, rep in pipeline_reports.items():
        lines += [bp.markdown(rep).replace("### ", "## ", 1), f"![per-stage latency](pipeline_{name}.png)", ""]
    lines += [bc.markdown(cls_report).replace("### ", "## ", 1), ""]
    if soak_report:
        from benchmarks.speed import soak

        lines += [soak.markdown(soak_report).replace("### ", "## ", 1), "![RSS over time](soak.png)", ""]
    if isinstance(scenes_report, dict) and scenes_report.get("markdown"):
        lines += [scenes_report["markdown"], ""]
    return "\n".join(lines)


def _best_variant(cls_report: dict) -> dict | None:
    """The variant the runtime ships (int8) if present, else the first."""
    vs = cls_report.get("variants") or []
    return next((v for v in vs if v["quantization"] == "int8"), vs[0] if vs else None)

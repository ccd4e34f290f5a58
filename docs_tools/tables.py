"""Regenerate the results tables of README.md and docs/*.md from the committed reports.

Every table that shows a measured figure sits between two marker comments::

    <!-- table:NAME -->
    | ... the generated table ... |
    <!-- /table -->

and is rebuilt here from the JSON that the benchmarks and evaluations write (reports/**.json,
models/**.json), so no figure is typed by hand. Run from the checkout:

    python -m docs_tools.tables            # rewrite every table in place
    python -m docs_tools.tables --check    # exit 1 and name each table that disagrees with its JSON

tests/test_docs.py runs the check.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

MARKER = re.compile(r"(<!-- table:(?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- /table -->)", re.S)

LABELS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


class TableError(Exception):
    """A table cannot be built: a report is missing or a marker names no known table."""


def load(root: Path, rel: str) -> dict:
    path = root / rel
    if not path.is_file():
        raise TableError(f"{rel} is missing: run the command that writes it (docs/benchmarks.md lists them)")
    return json.loads(path.read_text())


def pct(x: float | None, digits: int = 1) -> str:
    return "-" if x is None else f"{100 * x:.{digits}f} %"


def num(x: float, digits: int = 1) -> str:
    return f"{x:,.{digits}f}"


def table(header: list[str], rows: list[list[str]], align: list[str] | None = None) -> str:
    align = align or ["---"] * len(header)
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


# --- results against the peer ---------------------------------------------------------------

def _pipeline(root: Path, name: str) -> dict:
    return load(root, "reports/results.json")["pipeline"][name]


def _speed_row(what: str, run: dict) -> list[str]:
    peer = run.get("peer") or {}
    ratio = f" ({run['fps_ratio']:.1f}x)" if run.get("fps_ratio") else ""
    return [what, f"**{num(run['fps'])}**{ratio}", num(peer["fps"]) if peer else ""]


def results(root: Path, full: bool = False) -> str:
    r = load(root, "reports/results.json")
    int8 = load(root, "models/edge/int8_private.json")
    photos = load(root, "reports/photos/photos.json")
    crowd_video = load(root, "reports/photo_videos/bench_crowd_1920x1080.json")
    crowd = _crowd_targets(load(root, "reports/crowd/crowd.json"))["1920x1080"]
    one, two = r["pipeline"]["one_face_640x480"], r["pipeline"]["two_faces_640x360"]
    peer_cls = r["classifier"]["peer"]
    fe, pe = photos["fer_edge"], photos["peer"]
    rows = [
        ["FER-2013 PrivateTest accuracy, one pass (flip TTA)",
         f"**{pct(int8['accuracy'])}** ({pct(int8['tta_flip']['accuracy'])})", pct(peer_cls["accuracy"])],
        [f"real photos ({photos['n']:,}, not FER-2013): faces found / accuracy / macro recall",
         f"**{pct(fe['faces_found'])} / {pct(fe['accuracy'])} / {pct(fe['macro_recall'])}**",
         f"{pct(pe['faces_found'])} / {pct(pe['accuracy'])} / {pct(pe['macro_recall'])}"],
        _speed_row("frames/s, 640x480 video, 1 face", one),
        _speed_row("frames/s, 640x360 video, 2 faces", two),
        ["latency per 640x480 frame, 1 face, p50 / p95",
         f"**{one['latency_ms']['p50']:.2f} / {one['latency_ms']['p95']:.2f} ms**",
         f"{one['peer']['latency_ms']['p50']:.1f} / {one['peer']['latency_ms']['p95']:.1f} ms"],
        _speed_row(f"frames/s, 1080p video of {crowd_video['faces_per_frame']['min']} real photos", crowd_video),
        ["group scenes 1080p: recall on faces >= 48 px / 32-47 px, precision",
         f"**{pct(crowd['recall_48_plus'])} / {pct(crowd['recall_32_48'])}, {pct(crowd['precision'])}**", ""],
    ]
    if full:
        soak, scenes, cls = r["soak"], r["scenes"], r["classifier"]
        timing = next(t for t in cls["variants"][0]["timings"] if t["threads"] == 1 and t["batch"] == 1)
        verify = load(root, "models/edge/convert/emotion_verify.json")
        drop = verify["variants"][0]["drop_vs_keras_points"]["private"]
        rows += [
            ["emotion model: ms per face, 1 thread / file size",
             f"{timing['ms_per_face']:.2f} ms / {cls['variants'][0]['size_kb'] * 1024 / 1e6:.2f} MB",
             f"{peer_cls['ms_per_face']:.2f} ms / {peer_cls['size_kb']:.0f} KB"],
            ["int8 against Keras, PrivateTest", f"-{drop:.2f} points", ""],
            [f"RSS growth of the `fer-edge run --headless` loop over {soak['frames']:,} frames",
             f"{soak['rss_growth_mb']:+.1f} MB (slope {soak['rss_slope_mb_per_10k_frames']:+.2f} MB per 10,000 frames)", ""],
            ["synthetic scenes: accuracy on detected faces / the classifier on their original crops",
             f"{pct(scenes['smooth_off']['accuracy'])} / {pct(scenes['smooth_off']['crop_accuracy'])}", ""],
            ["synthetic scenes: label flips per track per second, smoothing off / on",
             f"{scenes['smooth_off']['flips_per_track_s']:.2f} / {scenes['smooth_on']['flips_per_track_s']:.2f}", ""],
            ["synthetic scenes: detection recall / precision",
             f"{pct(scenes['detection']['recall'])} / {pct(scenes['detection']['precision'])}", ""],
        ]
    return table(["", "fer-edge", f"peer: {peer_cls['name']}"], rows, ["---", "---:", "---:"])


def results_full(root: Path) -> str:
    return results(root, full=True)


# --- training and conversion ----------------------------------------------------------------

def _model_dirs(root: Path) -> list[Path]:
    dirs = {p.parent for p in (root / "models").rglob("keras_private.json")}
    return sorted(dirs, key=lambda d: (d.relative_to(root / "models").parts[0] != "edge", str(d)))


def training(root: Path) -> str:
    rows = []
    for d in _model_dirs(root):
        rel = d.relative_to(root).as_posix()
        meta = load(root, f"{rel}/train_meta.json")
        for kind in ("keras", "int8"):
            if not (d / f"{kind}_private.json").is_file():
                continue
            pub, priv = load(root, f"{rel}/{kind}_public.json"), load(root, f"{rel}/{kind}_private.json")
            tta = (priv.get("tta_flip") or {}).get("accuracy")
            trained = kind == "keras"
            rows.append([
                f"`{rel}` {'Keras' if trained else 'int8 TFLite'}", meta["arch"],
                f"{meta['params']:,}" if trained else "same",
                pct(pub["accuracy"], 2), pct(priv["accuracy"], 2), pct(tta, 2) if tta else "-",
                f"{meta['epochs_run']} (best: {meta['best_epoch']})" if trained else "",
                f"{meta['epoch_s_mean']:.0f} s" if trained else "",
                f"{meta['wall_s'] / 60:.1f} min" if trained else "",
            ])
    return table(["model", "arch", "params", "PublicTest", "PrivateTest", "PrivateTest, flip TTA",
                  "epochs", "mean epoch", "wall time"], rows)


def ferplus_curve(root: Path) -> str:
    """The FER+ vote-share curve that `python -m train.curve` wrote (PublicTest and real photos)."""
    points = load(root, "models/edge/ferplus/curve.json")
    if isinstance(points, dict):
        points = points["points"]
    rows = []
    for p in points:
        w = p.get("wild") or {}
        rows.append([f"`{p['run']}`", f"{p['ferplus_weight']:.2f}", str(p["epochs"]),
                     pct(p["public_accuracy"], 2), pct(p["public_ferplus_accuracy"], 2),
                     pct(w.get("faces_found")), pct(w.get("accuracy")), pct(w.get("macro_recall")),
                     *(pct((w.get("recall") or {}).get(c), 0) for c in ("disgust", "surprise", "neutral"))])
    return table(["run", "FER+ share", "epochs", "PublicTest, original labels", "PublicTest, FER+ majority",
                  "real photos: found", "accuracy", "macro recall", "disgust", "surprise", "neutral"], rows)


def per_class_f1(root: Path) -> str:
    ev = load(root, "models/edge/int8_private.json")
    return table(list(LABELS), [[f"{ev['per_class'][k]['f1']:.2f}" for k in LABELS]])


def convert_verify(root: Path) -> str:
    v = load(root, "models/edge/convert/emotion_verify.json")
    k = v["keras"]
    rows = [["Keras (reference)", f"{k['size_bytes'] / 1e6:.2f} MB checkpoint", pct(k["splits"]["public"]["accuracy"], 2),
             pct(k["splits"]["private"]["accuracy"], 2), "100 %", "-"]]
    for var in v["variants"]:
        rows.append([f"{var['quantization']} (`{var['file']}`)", f"{var['size_bytes'] / 1e6:.2f} MB",
                     pct(var["splits"]["public"]["accuracy"], 2), pct(var["splits"]["private"]["accuracy"], 2),
                     pct(var["splits"]["private"]["agreement"]),
                     f"{var['invoke_ms_median_1thread']:.2f} / {var['face_ms_median_1thread']:.2f}"])
    return table(["variant", "size", "PublicTest", "PrivateTest", "agreement with Keras (PrivateTest)",
                  "ms/face, 1 thread (invoke / classify)"], rows)


# --- accuracy benchmarks --------------------------------------------------------------------

def scenes(root: Path) -> str:
    s = load(root, "reports/scenes/scenes.json")
    det, off, on = s["detection"], s["smooth_off"], s["smooth_on"]
    by_size = " / ".join(pct(b["recall"], 0) for b in det["recall_by_size"])
    sides = " / ".join(
        f"<{b['side_px'][1]}" if b["side_px"][0] == 0 else (f">={b['side_px'][0]}" if b["side_px"][1] >= 10000
                                                          else f"{b['side_px'][0]}-{b['side_px'][1] - 1}")
        for b in det["recall_by_size"])
    rows = [
        [f"detection recall / precision (IoU >= {det['iou_threshold']})", f"{pct(det['recall'])} / {pct(det['precision'])}"],
        [f"recall by face side: {sides} px", by_size],
        ["accuracy on detected faces, smoothing off / on", f"{pct(off['accuracy'])} / {pct(on['accuracy'])}"],
        ["the classifier on the original 48x48 crops of those faces", pct(off["crop_accuracy"])],
        ["agreement with the classifier on the original crop, smoothing off / on",
         f"{pct(off['agreement'])} / {pct(on['agreement'])}"],
        ["label flips per track per second, smoothing off / on",
         f"{off['flips_per_track_s']:.3f} / {on['flips_per_track_s']:.3f} "
         f"({off['flips_per_track_s'] / on['flips_per_track_s']:.1f}x fewer)"],
        ["track id switches, smoothing off / on", f"{off['track_id_switches']} / {on['track_id_switches']}"],
    ]
    return table(["metric", "value"], rows)


def photos(root: Path) -> str:
    p = load(root, "reports/photos/photos.json")
    rows = []
    for name, key in (("fer-edge", "fer_edge"), (f"peer `{p['peer']['name'].split(' FER')[0]}`", "peer")):
        m = p[key]
        bold = (lambda s: f"**{s}**") if key == "fer_edge" else (lambda s: s)
        rows.append([name, bold(pct(m["faces_found"])), bold(pct(m["accuracy"])), bold(pct(m["macro_recall"]))]
                    + [pct(m["recall"][k]) for k in LABELS])
    rows.append(["photos", "", "", ""] + [str(p["fer_edge"]["support"][k]) for k in LABELS])
    return table(["", "faces found", "accuracy", "macro recall", *LABELS], rows, ["---"] + ["---:"] * 10)


def _crowd(root: Path, rel: str) -> str:
    c = load(root, rel)
    rows = []
    for row in c["table"]:
        bands = [f"{pct(b['recall'], 0)} / {pct(b['agreement'], 0)}" for b in row["bands"]]
        late = (f"{row['late_frames_to_find_median']:.0f} / {row['late_frames_to_find_max']}"
                if row.get("late_frames_to_find_median") is not None else "-")
        rows.append([f"{row['size'][0]}x{row['size'][1]}", row["mode"].split(" (")[0], *bands,
                     pct(row["recall"], 0), pct(row["precision"], 0), f"{row['fp_per_frame']:.2f}",
                     pct(row["recall_occluded"], 0), pct(row["recall_border"], 0),
                     f"{late}, {row['late_never_found']} of {row['late_faces']}",
                     f"{row['detect_ms']['p50']:.0f} / {row['detect_ms']['p95']:.0f}"])
    bands = [b["band"] for b in c["table"][0]["bands"]]
    return table(["frame", "detector mode", *bands, "recall", "precision", "FP/frame", "occluded", "tile edge",
                  "late face: frames to find (median / max), missed", "detect ms p50 / p95"], rows,
                 ["---", "---"] + ["---:"] * (len(bands) + 7))


def crowd(root: Path) -> str:
    return _crowd(root, "reports/crowd/crowd.json")


def _crowd_targets(report: dict) -> dict[str, dict]:
    """The targets per frame size ('1920x1080': {...}); older reports hold the 1080p ones alone."""
    t = report["targets"]
    return {"1920x1080": t} if "recall_48_plus" in t else t


def crowd_targets(root: Path) -> str:
    rows = []
    for rel in ("reports/crowd/crowd.json", "reports/crowd/seed2/crowd.json"):
        c = load(root, rel)
        for size, t in _crowd_targets(c).items():
            rows.append([f"{size}, seed {c['settings']['seed']}", pct(t["recall_48_plus"]), pct(t["recall_32_48"]),
                         pct(t["precision"]), pct(t["recall_48_plus_iou_only"])])
    return table(["frame, default settings", "recall >= 48 px (target 90 %)", "recall 32-47 px (target 75 %)",
                  "precision (target 95 %)", "recall >= 48 px, IoU rule only"], rows)


# --- speed ----------------------------------------------------------------------------------

def photo_videos(root: Path) -> str:
    rows = []
    for name in ("interview_640x360", "clip_720x480", "crowd_1920x1080"):
        b = load(root, f"reports/photo_videos/bench_{name}.json")
        lat, peer = b["latency_ms"], b.get("peer") or {}
        carry = root / f"reports/photo_videos/carry0/bench_{name}.json"
        c0 = ""
        if carry.is_file():
            c = load(root, f"reports/photo_videos/carry0/bench_{name}.json")
            c0 = f"{num(c['fps'])} against {num(c['peer']['fps'])}, {c['fps_ratio']:.1f}x"
        rows.append([f"{name}, {b['faces_per_frame']['min']} face(s)",
                     f"**{num(b['fps'])}**, {b['faces_per_frame']['mean']:.2f}, {lat['p50']:.2f} / {lat['p95']:.2f} ms",
                     f"{num(peer['fps'])}, {peer['faces_per_frame']['mean']:.2f}" if peer else "-",
                     f"{b['fps_ratio']:.1f}x" if b.get("fps_ratio") else "-", c0])
    return table(["video", "fer-edge: frames/s, faces per frame, latency p50 / p95", "peer: frames/s, faces per frame",
                  "ratio", "`--carry-frames 0`: frames/s, ratio"], rows, ["---", "---", "---", "---:", "---"])


def workers(root: Path) -> str:
    rows = []
    for name, what in (("one_face", "640x480, 1 face"), ("crowd8", "1920x1080, 8 faces (tiled)")):
        w1 = load(root, f"reports/crowd/speed/{name}_w1.json")
        w2 = load(root, f"reports/crowd/speed/{name}_w2.json")
        cell = [f"{num(w['fps'])}, {w['latency_ms']['p50']:.2f} / {w['latency_ms']['p95']:.2f} ms" for w in (w1, w2)]
        rows.append([what, cell[0], f"**{cell[1]}**", f"{w1['cpu_percent']:.0f} / {w2['cpu_percent']:.0f} %"])
    return table(["video", "`--workers 1`: frames/s, latency p50 / p95", "`--workers 2` (default)", "CPU, 1 / 2"], rows)


def batch(root: Path) -> str:
    """`fer-edge batch` against `fer-edge run` one video after another, resume and photos
    (benchmarks.commands.batch)."""
    r = load(root, "reports/batch/batch.json")
    serial, local = r["run_one_after_another"], r["batch_local"]

    def load_cell(e: dict) -> str:
        return f"{e['load_before']:.1f} / {e['load_after']:.1f}"

    rows = [[f"{len(r['videos'])} real-photo videos, {serial['frames']} frames: `fer-edge run` one after another",
             f"{num(serial['fps'])} frames/s", "1.00x", load_cell(serial)],
            ["the same, `fer-edge batch` (local engine)", f"**{num(local['fps'])}** frames/s", f"{local['x_run']:.2f}x",
             load_cell(local)],
            [f"the ceiling: the batch's work on these videos in one process, {num(r['ceiling']['cpu_s'])} CPU s, "
             f"spread over {r['ceiling']['cores']} cores", f"at most {num(r['ceiling']['fps'])} frames/s",
             f"{r['ceiling']['x_run']:.2f}x", load_cell(r["ceiling"])]]
    for key, what in (("batch_ray_started_before", "the same, `--engine ray` on a Ray started beforehand"),
                      ("batch_ray_own", "the same, `--engine ray` starting its own Ray")):
        if key in r:
            e = r[key]
            rows.append([what, f"{num(e['fps'])} frames/s", f"{e['x_run']:.2f}x "
                         f"({100 * e['of_local']:.0f} % of local)", load_cell(e)])
    again = r["resume_100_inputs"]["again"]
    rows.append(["a finished batch of 100 inputs, run again", f"{again['work_s']:.2f} s of work "
                 f"({again['wall_s']:.2f} s with the interpreter's start)", "", load_cell(again)])
    for key, what in (("photos_default", "photos, default settings"), ("photos_scan_frame", "photos, `--scan frame`")):
        e = r[key]
        rows.append([f"{e['photos']:,} {what}", f"{num(e['photos_per_s'])} photos/s ({num(e['photos_per_work_s'])} "
                     "after the interpreter's start)", "", load_cell(e)])
    return table(["what", "speed", "vs `fer-edge run`", "load average before / after"], rows,
                 ["---", "---", "---", "---"])


def mqtt_overhead(root: Path) -> str:
    """What `--mqtt` costs a headless run: alternating pairs against a real broker
    (benchmarks.commands.mqtt_overhead)."""
    r = load(root, "reports/mqtt/mqtt.json")
    rows = [[str(i), num(p["plain"]["fps"]), num(p["mqtt"]["fps"]), f"{p['ratio']:.3f}"]
            for i, p in enumerate(r["pairs"], 1)]
    rows.append(["**median**", num(r["median_fps_plain"]), num(r["median_fps_mqtt"]), f"**{r['median_ratio']:.3f}**"])
    rows.append(["process CPU, all rounds", f"{num(r['cpu_s_plain'])} s", f"{num(r['cpu_s_mqtt'])} s", ""])
    return table(["round", "without MQTT (frames/s)", "with `--mqtt` (frames/s)", "ratio"], rows)


TABLES: dict[str, Callable[[Path], str]] = {
    "results": results,
    "results-full": results_full,
    "training": training,
    "per-class-f1": per_class_f1,
    "ferplus-curve": ferplus_curve,
    "convert-verify": convert_verify,
    "scenes": scenes,
    "photos": photos,
    "crowd": crowd,
    "crowd-targets": crowd_targets,
    "photo-videos": photo_videos,
    "workers": workers,
    "batch": batch,
    "mqtt-overhead": mqtt_overhead,
}


def doc_files(root: Path) -> list[Path]:
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]


def rewrite(text: str, root: Path) -> tuple[str, list[str]]:
    """The text with every marked table rebuilt, and the names of the tables that changed."""
    changed: list[str] = []

    def one(m: re.Match) -> str:
        name = m["name"]
        if name not in TABLES:
            raise TableError(f"unknown table {name!r}; known: {', '.join(TABLES)}")
        body = TABLES[name](root)
        if body != m["body"]:
            changed.append(name)
        return m[1] + body + m[4]

    return MARKER.sub(one, text), changed


def stale(root: Path, files: list[Path] | None = None) -> list[str]:
    """'FILE: table NAME' for each committed table that disagrees with its JSON."""
    out = []
    for path in files or doc_files(root):
        _, changed = rewrite(path.read_text(), root)
        out += [f"{path.relative_to(root)}: table {name}" for name in changed]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m docs_tools.tables", description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a table disagrees with its JSON")
    parser.add_argument("--root", type=Path, default=REPO, help="the checkout (default: this one)")
    args = parser.parse_args(argv)
    try:
        if args.check:
            bad = stale(args.root)
            for line in bad:
                print(f"stale: {line} (run python -m docs_tools.tables)", file=sys.stderr)
            return 1 if bad else 0
        for path in doc_files(args.root):
            new, changed = rewrite(path.read_text(), args.root)
            if changed:
                path.write_text(new)
                print(f"{path.relative_to(args.root)}: {', '.join(changed)}")
    except TableError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

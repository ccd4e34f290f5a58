"""The scene benchmark's report: markdown (the table the README quotes), plot, files, and rows
for the results table of `fer-edge bench all`."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.common.outputs import pyplot, save_figure, write_report_files


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

"""Write a short real video for CI's emulated Pi check: committed FER-2013 test faces, upscaled, drifting.

    python .ci/scene_video.py OUT.mp4 [--frames N]

Made with OpenCV (benchmarks.scenes.synthetic), as the tests make theirs; it prints the path written
(an .avi when this OpenCV cannot write .mp4).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path, help="the video to write (.mp4)")
    ap.add_argument("--frames", type=int, default=30, help="frames to write (default: %(default)s)")
    args = ap.parse_args()
    from benchmarks.scenes.synthetic import make_scene_video
    from tests.edge.edge_runtime_helpers import fer_faces

    faces, labels = fer_faces(REPO / "tests" / "fixtures" / "faces", per_class=1)
    truth = make_scene_video(args.out, faces[3:4], labels[3:4], n_frames=args.frames, size=(640, 360),
                             faces_per_frame=1, face_px=(160, 200), seed=0, background="gradient",
                             write_truth_file=False)
    print(args.out.with_name(truth.video))
    return 0


if __name__ == "__main__":
    sys.exit(main())

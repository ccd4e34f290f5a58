"""Synthetic scenes with known faces, and the benchmarks on them: scene accuracy, group scenes,
the detector threshold curve, the crop calibration."""

"""MediaPipe's SSD anchor layout for the BlazeFace detectors.

This follows the behaviour of MediaPipe's `SsdAnchorsCalculator` with the options of its
face_detection_short_range / face_detection_full_range graphs. Both use `fixed_anchor_size`,
so every anchor is 1x1 in normalised units and only the centres matter: the regressors are
offsets from the centre, and the box size comes straight from the network.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class AnchorOptions:
    """The subset of MediaPipe's SsdAnchorsCalculatorOptions that the face models use."""

    input_size: int  # square network input, pixels
    strides: tuple[int, ...]  # one per layer
    # Anchors per cell on a layer: one per aspect ratio plus one "interpolated" anchor when
    # interpolated_scale_aspect_ratio > 0. Consecutive layers with the same stride share one
    # feature map, and their anchors are emitted together per cell.
    num_aspect_ratios: int = 1
    interpolated_scale_aspect_ratio: float = 1.0
    anchor_offset: float = 0.5  # cell-centre offset, both axes

    @property
    def anchors_per_layer(self) -> int:
        return self.num_aspect_ratios + (1 if self.interpolated_scale_aspect_ratio > 0 else 0)


# face_detection_short_range: 128x128; 16x16 cells x 2 anchors + 8x8 cells x (3 layers x 2) = 896.
SHORT_RANGE = AnchorOptions(input_size=128, strides=(8, 16, 16, 16), interpolated_scale_aspect_ratio=1.0)
# face_detection_full_range(_sparse): 192x192, one stride-4 layer, 48x48 cells x 1 anchor = 2304.
FULL_RANGE = AnchorOptions(input_size=192, strides=(4,), interpolated_scale_aspect_ratio=0.0)


def _groups(options: AnchorOptions):
    """(stride, anchors per cell) of each group of consecutive same-stride layers, in output order:
    such layers share one feature map, and their anchors are emitted together per cell."""
    layer = 0
    strides = options.strides
    while layer < len(strides):
        stride = strides[layer]
        same = 0
        while layer + same < len(strides) and strides[layer + same] == stride:
            same += 1
        yield stride, same * options.anchors_per_layer
        layer += same


def _cells(ys: np.ndarray, xs: np.ndarray, per_cell: int) -> np.ndarray:
    """(len(ys) * len(xs) * per_cell, 2) centres (x, y): row-major over cells (y outer, x inner),
    each cell's centre repeated per_cell times."""
    grid_y, grid_x = np.meshgrid(ys, xs, indexing="ij")
    return np.repeat(np.stack([grid_x.ravel(), grid_y.ravel()], axis=1), per_cell, axis=0)


def ssd_anchor_centres(options: AnchorOptions) -> np.ndarray:
    """Anchor centres, (n, 2) float32 (x, y) normalised to [0, 1], in the network's output order.

    Order: per group of same-stride layers, row-major over cells (y outer, x inner), then the
    group's anchors for that cell.
    """
    blocks = []
    for stride, per_cell in _groups(options):
        cells = int(math.ceil(options.input_size / stride))
        # Centre of cell i is (i + offset) / cells on both axes.
        coords = (np.arange(cells, dtype=np.float64) + options.anchor_offset) / cells
        blocks.append(_cells(coords, coords, per_cell))
    return np.concatenate(blocks, axis=0).astype(np.float32)


def anchor_centres_px(options: AnchorOptions, height: int, width: int) -> np.ndarray:
    """Anchor centres in input pixels, (n, 2) float32 (x, y), for a (height, width) input.

    The short-range network is fully convolutional, so it also runs on inputs other than its
    square size (multiples of the largest stride); its outputs then follow the same order as
    `ssd_anchor_centres` over a height x width grid. For the square input size this is
    `ssd_anchor_centres(options) * input_size`.
    """
    blocks = []
    for stride, per_cell in _groups(options):
        rows, cols = int(math.ceil(height / stride)), int(math.ceil(width / stride))
        blocks.append(_cells((np.arange(rows) + options.anchor_offset) * stride,
                             (np.arange(cols) + options.anchor_offset) * stride, per_cell))
    return np.concatenate(blocks, axis=0).astype(np.float32)

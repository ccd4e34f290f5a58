"""Training augmentation as one random affine warp per image (flip, rotation, zoom, shift).

A single combined warp costs one resampling per image, which matters on a 2-core CPU, and
keeps the face from being interpolated several times.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import tensorflow as tf


@dataclass(frozen=True)
class AugmentConfig:
    flip: bool = True
    rotation_deg: float = 10.0
    zoom: float = 0.10  # scale in [1 - zoom, 1 + zoom]
    shift: float = 0.10  # fraction of the side
    brightness: float = 0.15  # additive, in normalised units
    contrast: float = 0.15  # multiplicative


def augment_batch(images: tf.Tensor, cfg: AugmentConfig) -> tf.Tensor:
    """images: (b, h, w, 1) float32, already normalised by edge.preprocess.to_model_input."""
    b = tf.shape(images)[0]
    h = tf.cast(tf.shape(images)[1], tf.float32)
    w = tf.cast(tf.shape(images)[2], tf.float32)
    cx, cy = (w - 1.0) / 2.0, (h - 1.0) / 2.0
    ang = tf.random.uniform([b], -1.0, 1.0) * (cfg.rotation_deg * math.pi / 180.0)
    s = tf.random.uniform([b], 1.0 - cfg.zoom, 1.0 + cfg.zoom)
    tx = tf.random.uniform([b], -cfg.shift, cfg.shift) * w
    ty = tf.random.uniform([b], -cfg.shift, cfg.shift) * h
    f = tf.where(tf.random.uniform([b]) < 0.5, -1.0, 1.0) if cfg.flip else tf.ones([b])
    cos, sin = tf.cos(ang), tf.sin(ang)
    # The op maps each output pixel to an input pixel, so this is the inverse of
    # "flip, rotate, scale about the centre, then shift".
    a0, a1 = f * cos / s, f * sin / s
    b0, b1 = -sin / s, cos / s
    ox, oy = cx + tx, cy + ty
    a2 = cx - a0 * ox - a1 * oy
    b2 = cy - b0 * ox - b1 * oy
    zeros = tf.zeros([b])
    transforms = tf.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1)
    out = tf.raw_ops.ImageProjectiveTransformV3(
        images=images, transforms=transforms, output_shape=tf.shape(images)[1:3],
        fill_value=0.0, interpolation="BILINEAR", fill_mode="NEAREST")
    gain = tf.random.uniform([b, 1, 1, 1], 1.0 - cfg.contrast, 1.0 + cfg.contrast)
    bias = tf.random.uniform([b, 1, 1, 1], -cfg.brightness, cfg.brightness)
    return out * gain + bias

"""Training augmentation as one random affine warp per image (flip, rotation, zoom, shift).

A single combined warp costs one resampling per image, which matters on a 2-core CPU, and
keeps the face from being interpolated several times.

TensorFlow is imported inside the functions, so that importing AugmentConfig (train.fit does,
at module level) does not load it: `fit` imports TensorFlow only when training starts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class AugmentConfig:
    flip: bool = True
    rotation_deg: float = 10.0
    zoom: float = 0.10  # scale in [1 - zoom, 1 + zoom]
    shift: float = 0.10  # fraction of the side
    brightness: float = 0.15  # additive, in normalised units
    contrast: float = 0.15  # multiplicative
    erase_p: float = 0.5  # probability of random erasing (one rectangle of noise per image)
    erase_area: tuple[float, float] = (0.02, 0.25)  # erased fraction of the image


def augment_batch(images, cfg: AugmentConfig):
    """images: (b, h, w, 1) float32 tf.Tensor, already normalised by edge.classify.preprocess.to_model_input."""
    import tensorflow as tf

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
    out = out * gain + bias
    return _random_erase(out, cfg) if cfg.erase_p > 0 else out


def _random_erase(images, cfg: AugmentConfig):
    """Replace one random rectangle per image (with probability erase_p) by unit noise.

    Built from broadcast comparisons, so the whole batch is erased in a few vectorised ops.
    """
    import tensorflow as tf

    shape = tf.shape(images)
    b, h, w = shape[0], tf.cast(shape[1], tf.float32), tf.cast(shape[2], tf.float32)
    area = tf.random.uniform([b], cfg.erase_area[0], cfg.erase_area[1]) * h * w
    log_r = tf.random.uniform([b], math.log(0.3), math.log(1 / 0.3))
    eh = tf.minimum(tf.sqrt(area * tf.exp(log_r)), h)
    ew = tf.minimum(tf.sqrt(area / tf.exp(log_r)), w)
    y0 = tf.random.uniform([b]) * (h - eh)
    x0 = tf.random.uniform([b]) * (w - ew)
    ys = tf.range(h)[None, :, None]
    xs = tf.range(w)[None, None, :]
    inside = ((ys >= y0[:, None, None]) & (ys < (y0 + eh)[:, None, None])
              & (xs >= x0[:, None, None]) & (xs < (x0 + ew)[:, None, None]))
    inside &= (tf.random.uniform([b]) < cfg.erase_p)[:, None, None]
    noise = tf.random.normal(shape)
    return tf.where(inside[..., None], noise, images)

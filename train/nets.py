"""The two Keras CNNs: the source project's `seed` baseline and our `edge` network."""

from __future__ import annotations

import contextlib

import keras
from keras import layers

from edge.labels import NUM_CLASSES

ARCHITECTURES = ("seed", "edge")
# Input side per architecture: FER-2013's own 48x48, so a FER image reaches the model untouched
# and camera crops are cut straight to it. The int8 edge net at 48x48 stays inside the per-face
# time budget (measured in docs/convert.md), so nothing is gained by throwing away the images' detail.
INPUT_SIDE = {"seed": 48, "edge": 48}


def build_seed(input_shape=(48, 48, 1), num_classes: int = NUM_CLASSES) -> keras.Model:
    """The classic 6-layer baseline: 4 conv blocks (64-128-512-512) and 2 dense blocks (256, 512)."""
    inputs = keras.Input(input_shape, name="image")
    x = inputs
    for filters, kernel in ((64, 3), (128, 5), (512, 3), (512, 3)):
        x = layers.Conv2D(filters, kernel, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization()(x)
        x = layers.ReLU()(x)
        x = layers.MaxPooling2D(2)(x)
        x = layers.Dropout(0.25)(x)
    x = layers.Flatten()(x)
    for units in (256, 512):
        x = layers.Dense(units, use_bias=False)(x)
        x = layers.BatchNormalization()(x)
        x = layers.ReLU()(x)
        x = layers.Dropout(0.25)(x)
    # float32 even under a mixed-precision policy: a bfloat16 softmax rounds the probabilities.
    outputs = layers.Dense(num_classes, activation="softmax", name="probs", dtype="float32")(x)
    return keras.Model(inputs, outputs, name="seed")


def build_edge(input_shape=(48, 48, 1), num_classes: int = NUM_CLASSES,
               widths=(48, 96, 192, 256), dropout: float = 0.4) -> keras.Model:
    """Our edge network: 48x48 input, VGG-style stages of two 3x3 convs, global average pooling.

    Plain 3x3 convolutions (no depthwise) because at these sizes they are what XNNPACK and
    oneDNN run fastest per FLOP, both in int8 inference and in training; ReLU and BatchNorm
    fold into the convs for int8. Global pooling keeps the head tiny. The last stage is held
    to 256 channels so the float weights stay under the 8 MB that a committed model may take
    (its int8 speed per face: docs/convert.md).
    """
    inputs = keras.Input(input_shape, name="image")
    x = inputs
    for stage, filters in enumerate(widths):
        for _ in range(2):
            x = layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
            x = layers.BatchNormalization()(x)
            x = layers.ReLU()(x)
        if stage < len(widths) - 1:
            x = layers.MaxPooling2D(2)(x)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(dropout)(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="probs", dtype="float32")(x)
    return keras.Model(inputs, outputs, name="edge")


def build(arch: str, input_shape=None, num_classes: int = NUM_CLASSES) -> keras.Model:
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}; use one of {', '.join(ARCHITECTURES)}")
    input_shape = input_shape or (INPUT_SIDE[arch], INPUT_SIDE[arch], 1)
    if arch == "seed":
        return build_seed(input_shape, num_classes)
    return build_edge(input_shape, num_classes)


@contextlib.contextmanager
def dtype_policy(name: str):
    """Build layers under the Keras dtype policy `name` ("float32", "mixed_bfloat16")."""
    saved = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(name)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(saved)


def is_float32(model: keras.Model) -> bool:
    return all(layer.dtype_policy.compute_dtype == "float32" for layer in model.layers)


def load_weights_float32(path, arch: str, input_shape) -> keras.Model:
    """Build `arch` in float32 and load a .weights.h5 (the committed float model) into it."""
    with dtype_policy("float32"):
        model = build(arch, tuple(input_shape))
    model.load_weights(path)
    return model


def load_float32(path) -> keras.Model:
    """Load a .keras model for inference, evaluation or conversion in float32.

    A model trained under `mixed_bfloat16` keeps that policy in its config and would compute
    in bfloat16 (and the TFLite converter would carry the casts), so our own architectures
    are rebuilt in float32 and given its weights, which are float32 variables either way.
    """
    model = keras.models.load_model(path, compile=False)
    if is_float32(model):
        return model
    if model.name not in ARCHITECTURES:
        raise ValueError(f"{path}: computes in {model.dtype_policy.name}, and only the built-in "
                         f"architectures ({', '.join(ARCHITECTURES)}) can be rebuilt in float32")
    with dtype_policy("float32"):
        rebuilt = build(model.name, tuple(model.input_shape[1:]), int(model.output_shape[-1]))
    rebuilt.set_weights(model.get_weights())
    return rebuilt

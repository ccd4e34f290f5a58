"""Model output shapes and the architectures the issue describes."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras", reason="the [train] extra is not installed")

from train.nets import INPUT_SIDE, build  # noqa: E402


@pytest.mark.parametrize("arch", ["seed", "edge"])
@pytest.mark.parametrize("batch", [1, 3])
def test_output_is_a_probability_row_per_image(arch, batch):
    model = build(arch)
    side = INPUT_SIDE[arch]
    assert model.input_shape == (None, side, side, 1)
    probs = model.predict(np.random.default_rng(0).normal(size=(batch, side, side, 1)).astype("float32"), verbose=0)
    assert probs.shape == (batch, 7)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)


def test_seed_has_four_conv_blocks_and_two_dense_blocks():
    model = build("seed")
    convs = [l for l in model.layers if l.__class__.__name__ == "Conv2D"]
    dense = [l for l in model.layers if l.__class__.__name__ == "Dense"]
    assert [c.filters for c in convs] == [64, 128, 512, 512]
    assert [d.units for d in dense] == [256, 512, 7]
    assert sum(l.__class__.__name__ == "BatchNormalization" for l in model.layers) == 6


def test_architecture_round_trips_through_json():
    model = build("edge")
    clone = keras.models.model_from_json(model.to_json())
    assert clone.count_params() == model.count_params()


def test_unknown_architecture():
    with pytest.raises(ValueError, match="unknown architecture"):
        build("resnet")

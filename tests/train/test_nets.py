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


@pytest.mark.parametrize("arch", ["seed", "edge"])
def test_a_bfloat16_trained_model_loads_back_in_float32(tmp_path, arch):
    """Evaluation and conversion see float32 whatever precision the model was trained in."""
    from train.nets import dtype_policy, is_float32, load_float32

    with dtype_policy("mixed_bfloat16"):
        mixed = build(arch)
    assert not is_float32(mixed)
    assert mixed.get_layer("probs").dtype_policy.compute_dtype == "float32"  # the softmax stays exact
    path = tmp_path / f"{arch}.keras"
    mixed.save(path)
    assert keras.mixed_precision.global_policy().name == "float32"  # the scope restored it

    loaded = load_float32(path)
    assert is_float32(loaded)
    for a, b in zip(loaded.get_weights(), mixed.get_weights()):
        np.testing.assert_array_equal(a, b)
    x = np.random.default_rng(1).normal(size=(4, *loaded.input_shape[1:])).astype("float32")
    # bfloat16 keeps ~3 significant digits: the two agree closely, and float32 is the reference.
    np.testing.assert_allclose(loaded.predict(x, verbose=0), mixed.predict(x, verbose=0), atol=0.05)


def test_a_float32_model_loads_unchanged(tmp_path):
    from train.nets import load_float32

    model = build("edge")
    model.save(tmp_path / "m.keras")
    loaded = load_float32(tmp_path / "m.keras")
    assert loaded.to_json() == keras.models.load_model(tmp_path / "m.keras", compile=False).to_json()

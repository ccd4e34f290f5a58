"""benchmarks/speed/macs.py: MACs counted from a .tflite graph, checked against a network whose MACs are known."""

from __future__ import annotations

import pytest

from benchmarks.speed.macs import count_macs, main


def test_counts_conv_depthwise_and_dense_macs_of_a_real_converted_model(tmp_path):
    tf = pytest.importorskip("tensorflow", reason="building the reference model needs TensorFlow ([train])")
    L = tf.keras.layers
    model = tf.keras.Sequential([
        L.Input((12, 12, 3)),
        L.Conv2D(8, 3, padding="same"),              # 12*12 * 8*3*3*3 = 31,104
        L.DepthwiseConv2D(3, strides=2, padding="same"),  # 6*6 * 3*3*8 = 2,592
        L.Conv2D(16, 1),                             # 6*6 * 16*8 = 4,608
        L.GlobalAveragePooling2D(),
        L.Dense(5),                                  # 16*5 = 80
    ])
    path = tmp_path / "tiny.tflite"
    path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    m = count_macs(str(path))
    assert m.ops == 4
    assert m.macs == 31_104 + 2_592 + 4_608 + 80


def test_cli_prints_one_line_per_model(emotion_model, capsys):
    assert main([str(emotion_model)]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and "M MACs" in out[0] and str(emotion_model) in out[0]
    assert count_macs(str(emotion_model)).macs > 0

"""A `.keras` file holding every public layer of this package (with its
quantizers, constraints and augmentation steps) loads in a fresh process
after nothing but `import keras_cnnpractice`, and computes what the saved
model computed."""

import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from keras_cnnpractice import constraints
from keras_cnnpractice import layers as kcp
from keras_cnnpractice.layers import augment_steps as steps
from keras_cnnpractice.layers.pca_lighting import IMAGENET_EIGENVALUES
from keras_cnnpractice.layers.pca_lighting import IMAGENET_EIGENVECTORS

pytestmark = pytest.mark.integration


def every_layer_model():
    image = keras.Input((16, 16, 3), name="image")
    flat = keras.layers.Flatten()(image)
    conv = keras.layers.Conv2D(4, 3, padding="same")(image)
    devices = ["/cpu:0", "/cpu:0"]
    parts = kcp.PerDevice(keras.layers.Dense(6), devices)(flat)
    outputs = {
        "AsymmetricConv2D": kcp.AsymmetricConv2D(4, 3)(image),
        "BinaryConv2D": kcp.BinaryConv2D(4, 3)(image),
        "BinaryDense": kcp.BinaryDense(4)(flat),
        "Bottleneck": kcp.Bottleneck(4)(image),
        # Krizhevsky's split: the batch over two devices, then a dense
        # layer whose columns are split over them.
        "ColumnParallelDense": keras.layers.Concatenate()(
            kcp.ColumnParallelDense(4, devices)(parts)),
        "DropConnect": kcp.DropConnect(keras.layers.Dense(4), 0.5)(flat),
        "FastConv2D": kcp.FastConv2D(4, 3, algorithm="im2col")(image),
        "FusedAugment": kcp.FusedAugment(
            [steps.ResizedCrop(8, 8), steps.Flip(), steps.Contrast(0.2)])(
                image),
        "InceptionModule": kcp.InceptionModule(2, 2, 2, 2, 2, 2)(image),
        "LensDistortion": kcp.LensDistortion()(image),
        "LocalResponseNormalization": kcp.LocalResponseNormalization()(
            image),
        "PCALighting": kcp.PCALighting(0.1, IMAGENET_EIGENVALUES,
                                       IMAGENET_EIGENVECTORS)(image),
        "PerDevice": keras.layers.Concatenate(axis=0)(parts),
        "PositionBias": kcp.PositionBias()(image),
        "QuantConv2D": kcp.QuantConv2D(
            4, 3, kernel_quantizer="ste_sign",
            kernel_constraint=constraints.WeightClip(1.0))(image),
        "QuantDense": kcp.QuantDense(4, input_quantizer="approx_sign")(flat),
        "RandomAffine": kcp.RandomAffine(0.1)(image),
        "RandomResizedCrop": kcp.RandomResizedCrop(8, 8)(image),
        "ScaleAugment": kcp.ScaleAugment((16, 20), 8)(image),
        "StackedConv2D": kcp.StackedConv2D(4, receptive_field=5)(image),
        "StochasticDepth": kcp.StochasticDepth()([conv, conv]),
        "XnorConv2D": kcp.XnorConv2D(4, 3)(image),
        "XnorDense": kcp.XnorDense(4)(flat),
    }
    assert sorted(outputs) == sorted(kcp.__all__)  # every public layer
    return keras.Model(image, outputs)


def test_every_layer_loads_after_one_import(tmp_path):
    model = every_layer_model()
    x = np.random.default_rng(0).uniform(0, 255, (2, 16, 16, 3)).astype(
        "float32")
    want = {k: v.numpy() for k, v in model(x, training=False).items()}
    model.save(tmp_path / "every_layer.keras")
    np.savez(tmp_path / "io.npz", x=x, **want)
    script = textwrap.dedent(f"""
        import numpy as np
        import keras_cnnpractice  # the one import
        import keras
        model = keras.saving.load_model({str(tmp_path / "every_layer.keras")!r})
        io = np.load({str(tmp_path / "io.npz")!r})
        got = model(io["x"], training=False)
        for name, value in got.items():
            np.testing.assert_allclose(np.asarray(value), io[name],
                                       rtol=1e-5, atol=1e-4, err_msg=name)
        print("loaded", len(got), "outputs")
    """)
    result = subprocess.run([sys.executable, "-c", script],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"loaded {len(want)} outputs" in result.stdout

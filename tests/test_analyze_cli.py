"""kcp-analyze."""

import keras
import pytest

from keras_cnnpractice.layers import Bottleneck
from tests.conftest import run_python

pytestmark = pytest.mark.integration


def test_csv_for_a_zoo_model_at_a_small_size(tmp_path):
    out = tmp_path / "vgg11.csv"
    run_python(["-m", "keras_cnnpractice.cli.analyze", "vgg11",
                "--input_shape=32,32,3", "--num_classes=10", "--format=csv",
                f"--output={out}"])
    lines = out.read_text().splitlines()
    assert lines[0].startswith("layer,type,output,params,MACs")
    assert lines[1].startswith("block1_conv1,Conv2D,32x32x64,1792,")
    assert lines[-1].startswith("predictions,Dense,10,40970,")


def test_keras_file_with_nested_layers(tmp_path):
    inputs = keras.Input((8, 8, 4))
    model = keras.Model(inputs, Bottleneck(8, residual=True, name="block")(inputs))
    path = tmp_path / "m.keras"
    model.save(path)
    result = run_python(["-m", "keras_cnnpractice.cli.analyze", str(path),
                         "--format=markdown", "--batch_size=16"])
    assert "| block/reduce | Conv2D | 8x8x4 |" in result.stdout
    assert "| block/add | Add |" in result.stdout
    assert "training memory estimate, batch 16" in result.stdout


def test_errors_are_one_line():
    result = run_python(["-m", "keras_cnnpractice.cli.analyze", "lenet-9000"],
                        check=False)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith(
        "kcp-analyze: error: Unknown model 'lenet-9000'")
    assert "Traceback" not in result.stderr

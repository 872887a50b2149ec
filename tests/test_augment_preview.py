"""kcp-augment-preview."""

import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import run_python

pytestmark = pytest.mark.integration

SIZE = 32


def _photo(path, height=40, width=56):
    """A PNG with structure everywhere (gradients plus noise), not square, so
    the centre crop, resize, crops, flips and color changes all show."""
    rng = np.random.default_rng(0)
    rows = np.linspace(0, 255, height)[:, None, None]
    cols = np.linspace(0, 255, width)[None, :, None]
    image = np.concatenate([rows + 0 * cols, cols + 0 * rows,
                            (rows + cols) / 2], axis=-1)
    image = np.clip(image + rng.normal(0, 20, image.shape), 0, 255)
    path.write_bytes(tf.io.encode_png(image.astype(np.uint8)).numpy())
    return path


def _preview(*args):
    return run_python(["-m", "keras_cnnpractice.cli.augment_preview", *args],
                      check=False)


def _one_error_line(result):
    """The CLI's only error line (TensorFlow's own C++ log lines aside)."""
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    errors = [ln for ln in result.stderr.splitlines()
              if ln.startswith("kcp-augment-preview:")]
    assert len(errors) == 1, result.stderr[-3000:]
    assert errors[0].startswith("kcp-augment-preview: error: ")
    return errors[0]


@pytest.mark.parametrize("policy", ["natural", "digits"])
def test_grid_size_and_cells_differ(tmp_path, policy):
    out = tmp_path / "grid.png"
    result = _preview(f"--policy={policy}", str(_photo(tmp_path / "in.png")),
                      "-o", str(out), "--rows", "2", "--cols", "3",
                      f"--size={SIZE}", "--seed=1")
    assert result.returncode == 0, result.stderr[-3000:]
    grid = tf.io.decode_png(out.read_bytes()).numpy()
    assert grid.shape == (2 * SIZE, 3 * SIZE, 3)
    cells = [grid[r * SIZE:(r + 1) * SIZE, c * SIZE:(c + 1) * SIZE]
             for r in range(2) for c in range(3)]
    for i in range(len(cells)):
        for j in range(i + 1, len(cells)):
            assert not np.array_equal(cells[i], cells[j]), (i, j)
    assert not (tmp_path / "grid.png.tmp").exists()


def test_missing_file_is_one_line_exit_2(tmp_path):
    out = tmp_path / "grid.png"
    line = _one_error_line(_preview(str(tmp_path / "nope.png"), "-o",
                                    str(out)))
    assert line.startswith("kcp-augment-preview: error: cannot read image")
    assert "nope.png" in line and "No such file" in line
    assert not out.exists() and not (tmp_path / "grid.png.tmp").exists()


def test_corrupt_file_is_one_line_exit_2(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    out = tmp_path / "grid.png"
    line = _one_error_line(_preview(str(bad), "-o", str(out)))
    assert line.startswith("kcp-augment-preview: error: cannot read image")
    assert "{{" not in line and "[Op:" not in line
    assert not out.exists()


def test_bad_policy_is_one_line_exit_2(tmp_path):
    line = _one_error_line(_preview("--policy=cartoon",
                                    str(tmp_path / "in.png"), "-o",
                                    str(tmp_path / "grid.png")))
    assert "--policy=cartoon" in line and "natural" in line

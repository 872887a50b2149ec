"""train.py refuses bad flags on one line before anything is trained: a
learning rate that is not a finite number > 0, an output folder that
cannot be a writable directory, a missing --init_from, --new_head_classes
without --init_from."""

import math

import pytest

from keras_cnnpractice.training.train_flags import check_init_from
from keras_cnnpractice.training.train_flags import check_learning_rate
from keras_cnnpractice.training.train_flags import check_output_dir
from tests.conftest import run_python

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, 0.0, -1e-3])
def test_bad_learning_rates_are_refused(value):
    with pytest.raises(ValueError, match="finite number > 0"):
        check_learning_rate(value)


@pytest.mark.parametrize("value", [1e-9, 0.01, 50.0])
def test_finite_positive_learning_rates_pass(value):
    check_learning_rate(value)


def test_train_py_nan_learning_rate_is_a_one_line_usage_error(tmp_path):
    result = run_python(["train.py", "--learning_rate=nan",
                         f"--model_dir={tmp_path}"], check=False)
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("train.py: error: flag --learning_rate=nan:")
    assert "finite number > 0" in last
    assert "Traceback" not in result.stderr
    assert not any(tmp_path.iterdir())  # nothing trained, nothing written


def test_output_folders_must_be_writable_directories(tmp_path):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(ValueError, match=f"{a_file} is a file"):
        check_output_dir(str(a_file / "run"), "model_dir")
    with pytest.raises(ValueError, match="export_dir must be a directory"):
        check_output_dir(str(a_file), "export_dir")
    check_output_dir(str(tmp_path / "new" / "deeper"), "model_dir")
    check_output_dir("", "export_dir")  # unset: the default


def test_init_from_must_exist(tmp_path):
    with pytest.raises(ValueError, match="no such file"):
        check_init_from(str(tmp_path / "missing.keras"))
    check_init_from(str(tmp_path))
    check_init_from("")


@pytest.mark.parametrize("flags, message", [
    (["--new_head_classes=5"], "needs --init_from"),
    (["--init_from=/nonexistent/model.keras"], "no such file"),
    (["--export_dir={file}/export"], "is a file"),
])
def test_train_py_bad_paths_are_one_line_usage_errors(tmp_path, flags,
                                                      message):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    result = run_python(["train.py", f"--model_dir={tmp_path / 'run'}"]
                        + [f.format(file=a_file) for f in flags],
                        check=False)
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("train.py: error: flag") and message in last
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "run").exists()  # nothing trained, nothing written

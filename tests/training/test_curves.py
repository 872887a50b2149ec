"""Training curves drawn from a CSVLogger file."""

import pytest

from keras_cnnpractice.training import plot_training_curves
from tests.svg_points import line_vertices

CSV = """epoch,accuracy,loss,val_accuracy,val_loss
0,0.5,2.0,0.6,1.5
1,0.8,1.0,0.7,1.2
2,0.9,0.5,0.75,1.3
"""


def test_one_line_per_split_with_one_point_per_epoch(tmp_path):
    (tmp_path / "history.csv").write_text(CSV)
    paths = plot_training_curves(tmp_path / "history.csv")
    assert [p.name for p in paths] == ["loss.svg", "accuracy.svg"]
    svg = (tmp_path / "loss.svg").read_text()
    assert "train loss" in svg and "validation loss" in svg
    lines = [line_vertices(tmp_path / "loss.svg", label)
             for label in ("train loss", "validation loss")]
    assert [len(pieces) for pieces in lines] == [1, 1]
    train = lines[0][0]
    assert len(train) == 3
    # Pixel y grows downwards, so a falling loss has growing y; equal
    # epochs are equal steps along x.
    assert train[0][1] < train[1][1] < train[2][1]
    assert train[1][0] - train[0][0] == pytest.approx(train[2][0] - train[1][0])
    # 2.0 -> 1.0 -> 0.5: the second step is half the first.
    assert train[2][1] - train[1][1] == pytest.approx(
        (train[1][1] - train[0][1]) / 2, abs=0.2)


def test_empty_history_is_an_error(tmp_path):
    (tmp_path / "history.csv").write_text("epoch,loss\n")
    with pytest.raises(ValueError, match="No epochs"):
        plot_training_curves(tmp_path / "history.csv", tmp_path / "out")


def test_read_history_gives_columns_with_missing_values_as_nan(tmp_path):
    import math

    from keras_cnnpractice.training.curves import read_history
    (tmp_path / "h.csv").write_text("epoch,loss,val_loss\n0,2.5,NA\n1,1.5,\n")
    history = read_history(tmp_path / "h.csv")
    assert history["epoch"] == [0.0, 1.0] and history["loss"] == [2.5, 1.5]
    assert all(math.isnan(v) for v in history["val_loss"])
    (tmp_path / "empty.csv").write_text("epoch,loss\n")
    assert read_history(tmp_path / "empty.csv") == {}

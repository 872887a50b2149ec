"""The plots draw each point where its value says (checked on the
matplotlib figure) and write a well-formed SVG file."""

import math
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from matplotlib.colors import to_rgba

from keras_cnnpractice.plots import line_figure
from keras_cnnpractice.plots import line_plot
from keras_cnnpractice.plots import scatter_figure
from keras_cnnpractice.plots import scatter_plot

POINTS = [(1e-4, 1e-3), (1e-3, 1e-2), (1e-2, 1e-1)]


def test_scatter_log_axes_place_points_by_decade(tmp_path):
    figure = scatter_figure(POINTS, "t", "lr", "reg", log_x=True, log_y=True,
                            values=[0.1, 0.5, float("nan")],
                            value_label="acc")
    axes = figure.axes[0]
    assert axes.get_xscale() == "log" and axes.get_yscale() == "log"
    collection = axes.collections[0]
    np.testing.assert_allclose(collection.get_offsets(), POINTS)
    # On the page, equal steps in log10 are equal steps.
    figure.canvas.draw()
    pixels = axes.transData.transform(POINTS)
    steps = np.diff(pixels, axis=0)
    np.testing.assert_allclose(steps[0], steps[1], atol=0.2)
    assert pixels[0, 1] < pixels[1, 1] < pixels[2, 1]  # larger values higher
    colors = collection.get_facecolors()
    assert tuple(colors[2]) == to_rgba("gray")
    assert colors[0][2] > colors[0][0] and colors[1][0] > colors[1][2]
    assert [t.get_text() for t in axes.texts][:3] == ["0.1", "0.5", "nan"]
    path = scatter_plot(tmp_path / "s.svg", POINTS, "t", "lr", "reg",
                        log_x=True, log_y=True)
    assert ET.parse(path).getroot().tag.endswith("svg")
    assert [p.name for p in tmp_path.iterdir()] == ["s.svg"]


def test_line_plot_breaks_at_nan_and_rejects_empty(tmp_path):
    loss = [3.0, 2.0, float("nan"), 1.0, 0.5]
    figure = line_figure({"loss": loss, "val_loss": [2.5, 1.5]}, "t")
    lines = figure.axes[0].lines
    assert list(lines[0].get_xdata()) == [1, 2, 3, 4, 5]
    ydata = lines[0].get_ydata()
    assert math.isnan(ydata[2]) and list(ydata[[0, 1, 3, 4]]) == [
        3.0, 2.0, 1.0, 0.5]
    assert figure.axes[0].get_ylim()[0] == 0.0
    path = line_plot(tmp_path / "l.svg", {"loss": loss}, "t")
    assert ET.parse(path).getroot().tag.endswith("svg")
    with pytest.raises(ValueError, match="finite"):
        line_plot(tmp_path / "x.svg", {"loss": [float("nan")]}, "t")
    with pytest.raises(ValueError, match="log axis"):
        scatter_plot(tmp_path / "y.svg", [(0.0, 1.0)], "t", "x", "y",
                     log_x=True)
    assert not (tmp_path / "x.svg").exists()

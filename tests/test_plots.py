"""The SVG plots put each point where its value says."""

import re

import pytest

from keras_cnnpractice.plots import line_plot
from keras_cnnpractice.plots import scatter_plot


def test_scatter_log_axes_place_points_by_decade(tmp_path):
    path = scatter_plot(tmp_path / "s.svg", [(1e-4, 1e-3), (1e-3, 1e-2),
                                             (1e-2, 1e-1)],
                        "t", "lr", "reg", log_x=True, log_y=True,
                        values=[0.1, 0.5, float("nan")], value_label="acc")
    svg = path.read_text()
    circles = [tuple(map(float, m)) for m in
               re.findall(r'<circle cx="([\d.]+)" cy="([\d.]+)"', svg)]
    xs, ys = zip(*circles)
    # Equal steps in log10 are equal steps on the page.
    assert xs[1] - xs[0] == pytest.approx(xs[2] - xs[1], abs=0.2)
    assert ys[0] > ys[1] > ys[2]  # larger values higher up
    assert 'fill="gray"' in svg and ">nan<" in svg
    assert svg.startswith("<svg") and svg.rstrip().endswith("</svg>")


def test_line_plot_breaks_at_nan_and_rejects_empty(tmp_path):
    svg = line_plot(tmp_path / "l.svg", {"loss": [3.0, 2.0, float("nan"),
                                                  1.0, 0.5]}, "t").read_text()
    assert svg.count("<polyline") == 2
    with pytest.raises(ValueError, match="finite"):
        line_plot(tmp_path / "x.svg", {"loss": [float("nan")]}, "t")
    with pytest.raises(ValueError, match="log axis"):
        scatter_plot(tmp_path / "y.svg", [(0.0, 1.0)], "t", "x", "y",
                     log_x=True)

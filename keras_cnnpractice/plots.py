"""Training curves and search scatters as SVG files, drawn with matplotlib.

Figures are made with matplotlib's object API (`matplotlib.figure.Figure`,
no `pyplot` state), so plotting from a callback or beside a training loop
touches no global figure manager; files are written through a temporary
name (`_files.replacing`).
"""

import math
import pathlib

import matplotlib
from matplotlib import colormaps
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from keras_cnnpractice._files import replacing

_FIGSIZE = (6.4, 4.0)


def _save(figure, path):
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Text as text (searchable, and the legend readable by a test), and
    # the same data gives the same file.
    with matplotlib.rc_context({"svg.fonttype": "none",
                                "svg.hashsalt": "keras_cnnpractice"}):
        with replacing(path) as tmp:
            figure.savefig(tmp, format=path.suffix.lstrip(".") or "svg",
                           metadata={"Date": None})
    return path


def line_figure(series, title, xlabel="epoch", ylabel=""):
    """A figure with one line per series (see `line_plot`).

    Raises:
        ValueError: no finite value at all.
    """
    finite = [y for ys in series.values() for y in ys if math.isfinite(y)]
    if not finite:
        raise ValueError(f"line_plot needs at least one finite value. "
                         f"Received: series={series!r}")
    figure = Figure(figsize=_FIGSIZE)
    axes = figure.add_subplot()
    for label, ys in series.items():
        # A non-finite value (NaN) leaves a gap: matplotlib breaks the line.
        axes.plot(range(1, len(ys) + 1), [float(y) for y in ys],
                  label=label, linewidth=2, gid=label)  # <g id=LABEL> in SVG
    axes.set(title=title, xlabel=xlabel, ylabel=ylabel)
    axes.set_ylim(bottom=min(0.0, min(finite)))
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.grid(alpha=0.3)
    axes.legend()
    return figure


def line_plot(path, series, title, xlabel="epoch", ylabel=""):
    """Writes a figure with one line per series.

    Args:
        path: the file to write (`.svg`, or any format matplotlib knows by
            its suffix).
        series: `{label: [y, ...]}`; the i-th value is drawn at x = i + 1.
            Non-finite values (a NaN loss) break the line.
        title, xlabel, ylabel: text on the figure.

    Returns:
        The path written.

    Raises:
        ValueError: no finite value at all.
    """
    return _save(line_figure(series, title, xlabel, ylabel), path)


def scatter_figure(points, title, xlabel, ylabel, log_x=False, log_y=False,
                   values=None, value_label=None):
    """A scatter figure (see `scatter_plot`).

    Raises:
        ValueError: no points, a non-positive value on a log axis, or
            `values` not one per point.
    """
    if not points:
        raise ValueError("scatter_plot needs at least one point. Received: "
                         "points=[]")
    if values is not None and len(values) != len(points):
        raise ValueError(f"values must have one entry per point. Received: "
                         f"{len(values)} values for {len(points)} points")
    for axis, log in (("x", log_x), ("y", log_y)):
        low = min(p[axis == "y"] for p in points)
        if log and low <= 0:
            raise ValueError(f"A log axis needs positive values. Received: "
                             f"min {axis}={low}")
    figure = Figure(figsize=_FIGSIZE)
    axes = figure.add_subplot()
    xs, ys = [float(p[0]) for p in points], [float(p[1]) for p in points]
    colors = None
    if values is not None:
        finite = [v for v in values if math.isfinite(v)]
        norm = Normalize(min(finite, default=0.0), max(finite, default=1.0))
        cmap = colormaps["coolwarm"]
        colors = [cmap(norm(v)) if math.isfinite(v) else "gray"
                  for v in values]
        for x, y, v in zip(xs, ys, values):
            axes.annotate(f"{v:.3g}" if math.isfinite(v) else "nan", (x, y),
                          xytext=(5, 3), textcoords="offset points",
                          fontsize=8)
    axes.scatter(xs, ys, c=colors, s=40, gid="points")
    axes.set_xscale("log" if log_x else "linear")
    axes.set_yscale("log" if log_y else "linear")
    axes.set(title=title, xlabel=xlabel, ylabel=ylabel)
    if value_label:
        axes.text(1.0, 1.01, f"colour: {value_label} (blue low, red high)",
                  transform=axes.transAxes, ha="right", va="bottom",
                  fontsize=8)
    axes.grid(alpha=0.3)
    return figure


def scatter_plot(path, points, title, xlabel, ylabel, log_x=False,
                 log_y=False, values=None, value_label=None):
    """Writes a scatter plot, each point optionally coloured by a value.

    Args:
        path: the file to write (`.svg`, or any format matplotlib knows by
            its suffix).
        points: `[(x, y), ...]`.
        title, xlabel, ylabel: text on the figure.
        log_x, log_y: log10 axes (values must be positive).
        values: optional number per point, drawn from blue (lowest) to red
            (highest) and written beside the point (a NaN in gray).
        value_label: the legend's name for `values`.

    Returns:
        The path written.

    Raises:
        ValueError: as `scatter_figure`.
    """
    return _save(scatter_figure(points, title, xlabel, ylabel, log_x, log_y,
                                values, value_label), path)

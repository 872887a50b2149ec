"""Dependency-free SVG plots: training curves and search scatters.

The project draws its few figures itself rather than depending on
matplotlib: a line plot (one line per series, x = 1..n) and a scatter plot
with optional log axes and a colour per point.
"""

import math
import pathlib

from keras_cnnpractice._files import write_text_atomic

_WIDTH, _HEIGHT, _MARGIN = 640, 400, 60
_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b",
           "#e377c2")


class _Axis:
    """Maps data values onto pixels, linearly or in log10."""

    def __init__(self, values, start, end, log=False, from_zero=False):
        if log and min(values) <= 0:
            raise ValueError("A log axis needs positive values. Received: "
                             f"min={min(values)}")
        self.log, self.start, self.end = log, start, end
        data = [self._t(v) for v in values]
        low, high = min(data), max(data)
        if from_zero and not log:
            low, high = min(low, 0.0), max(high, 0.0)
        pad = (high - low) * 0.05 or 0.5
        self.low, self.high = low - (0 if from_zero and low == 0 else pad), high + pad

    def _t(self, v):
        return math.log10(v) if self.log else float(v)

    def __call__(self, v):
        f = (self._t(v) - self.low) / (self.high - self.low)
        return self.start + f * (self.end - self.start)

    def ticks(self, count=5):
        """`(value, label)` pairs spread over the axis."""
        if self.log:
            lo, hi = math.ceil(self.low), math.floor(self.high)
            if hi >= lo:
                step = max(1, (hi - lo + 1) // count)
                return [(10.0 ** e, f"1e{e}") for e in range(lo, hi + 1, step)]
        values = [self.low + (self.high - self.low) * k / (count - 1)
                  for k in range(count)]
        if self.log:
            values = [10.0 ** v for v in values]
        return [(v, f"{v:.3g}") for v in values]


def _frame(title, xlabel, ylabel, xaxis, yaxis):
    w, h, m = _WIDTH, _HEIGHT, _MARGIN
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" '
             f'height="{h}" font-family="sans-serif" font-size="12">',
             f'<rect width="{w}" height="{h}" fill="white"/>',
             f'<text x="{w / 2}" y="20" text-anchor="middle">{title}</text>',
             f'<line x1="{m}" y1="{h - m}" x2="{w - m}" y2="{h - m}" '
             'stroke="black"/>',
             f'<line x1="{m}" y1="{m}" x2="{m}" y2="{h - m}" stroke="black"/>',
             f'<text x="{w / 2}" y="{h - 20}" text-anchor="middle">{xlabel}'
             '</text>',
             f'<text x="15" y="{h / 2}" transform="rotate(-90 15 {h / 2})" '
             f'text-anchor="middle">{ylabel}</text>']
    for value, label in yaxis.ticks():
        y = yaxis(value)
        parts.append(f'<text x="{m - 5}" y="{y + 4:.1f}" text-anchor="end">'
                     f'{label}</text>')
    for value, label in xaxis.ticks():
        x = xaxis(value)
        parts.append(f'<text x="{x:.1f}" y="{h - m + 15}" '
                     f'text-anchor="middle">{label}</text>')
    return parts


def _write(path, parts):
    parts.append("</svg>")
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, "\n".join(parts) + "\n")
    return path


def line_plot(path, series, title, xlabel="epoch", ylabel=""):
    """Writes an SVG with one line per series.

    Args:
        path: the `.svg` file to write (through a temporary name).
        series: `{label: [y, ...]}`; the i-th value is drawn at x = i + 1.
            Non-finite values (a NaN loss) break the line.
        title, xlabel, ylabel: text on the figure.

    Returns:
        The path written.
    """
    finite = [y for ys in series.values() for y in ys if math.isfinite(y)]
    if not finite:
        raise ValueError(f"line_plot needs at least one finite value. "
                         f"Received: series={series!r}")
    n = max(len(ys) for ys in series.values())
    xaxis = _Axis([1, max(n, 2)], _MARGIN, _WIDTH - _MARGIN)
    yaxis = _Axis(finite, _HEIGHT - _MARGIN, _MARGIN, from_zero=True)
    parts = _frame(title, xlabel, ylabel, xaxis, yaxis)
    for k, (label, ys) in enumerate(series.items()):
        color = _COLORS[k % len(_COLORS)]
        segments, current = [], []
        for i, y in enumerate(ys, start=1):
            if math.isfinite(y):
                current.append(f"{xaxis(i):.1f},{yaxis(y):.1f}")
            elif current:
                segments.append(current)
                current = []
        segments.append(current)
        for points in filter(None, segments):
            parts.append(f'<polyline fill="none" stroke="{color}" '
                         f'stroke-width="2" points="{" ".join(points)}"/>')
        parts.append(f'<text x="{_WIDTH - _MARGIN - 135}" '
                     f'y="{_MARGIN + 15 * k}" fill="{color}">{label}</text>')
    return _write(path, parts)


def scatter_plot(path, points, title, xlabel, ylabel, log_x=False,
                 log_y=False, values=None, value_label=None):
    """Writes an SVG scatter plot, each point optionally coloured by a value.

    Args:
        path: the `.svg` file to write (through a temporary name).
        points: `[(x, y), ...]`.
        title, xlabel, ylabel: text on the figure.
        log_x, log_y: log10 axes (values must be positive).
        values: optional number per point, drawn from blue (lowest) to red
            (highest) and written beside the point.
        value_label: the legend's name for `values`.

    Returns:
        The path written.
    """
    if not points:
        raise ValueError("scatter_plot needs at least one point. Received: "
                         "points=[]")
    if values is not None and len(values) != len(points):
        raise ValueError(f"values must have one entry per point. Received: "
                         f"{len(values)} values for {len(points)} points")
    xaxis = _Axis([p[0] for p in points], _MARGIN, _WIDTH - _MARGIN, log_x)
    yaxis = _Axis([p[1] for p in points], _HEIGHT - _MARGIN, _MARGIN, log_y)
    parts = _frame(title, xlabel, ylabel, xaxis, yaxis)
    finite = [v for v in values or () if math.isfinite(v)]
    low, high = (min(finite), max(finite)) if finite else (0.0, 1.0)
    for i, (x, y) in enumerate(points):
        color, text = _COLORS[0], ""
        if values is not None:
            v = values[i]
            if math.isfinite(v):
                f = (v - low) / (high - low) if high > low else 1.0
                color = f"rgb({round(255 * f)},60,{round(255 * (1 - f))})"
                text = f"{v:.3g}"
            else:
                color, text = "gray", "nan"
        cx, cy = xaxis(x), yaxis(y)
        parts.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="5" '
                     f'fill="{color}"/>')
        if text:
            parts.append(f'<text x="{cx + 7:.1f}" y="{cy + 4:.1f}" '
                         f'font-size="10">{text}</text>')
    if value_label:
        parts.append(f'<text x="{_WIDTH - _MARGIN}" y="{_MARGIN - 10}" '
                     f'text-anchor="end">colour: {value_label} (blue low, '
                     'red high)</text>')
    return _write(path, parts)

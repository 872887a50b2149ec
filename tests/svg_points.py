"""Reading back what matplotlib drew into an SVG file: the vertices of a
line, or the markers of a scatter, by the `gid` the plot gave them."""

import re
import xml.etree.ElementTree as ET

SVG = "{http://www.w3.org/2000/svg}"


def _group(path, gid):
    root = ET.parse(path).getroot()
    assert root.tag == SVG + "svg", root.tag
    found = [g for g in root.iter(SVG + "g") if g.get("id") == gid]
    assert len(found) == 1, (gid, len(found))
    return found[0]


def line_vertices(path, gid):
    """`[(x, y), ...]` pixels of the polylines of the line `gid`, one list
    per unbroken piece."""
    pieces = []
    for element in _group(path, gid).iter(SVG + "path"):
        for part in re.split(r"(?=M)", element.get("d")):
            numbers = [float(v) for v in re.findall(r"-?[\d.]+", part)]
            if numbers:
                pieces.append(list(zip(numbers[::2], numbers[1::2])))
    return pieces


def scatter_markers(path, gid="points"):
    """`[(x, y), ...]` pixels of the scatter's markers."""
    return [(float(use.get("x")), float(use.get("y")))
            for use in _group(path, gid).iter(SVG + "use")]

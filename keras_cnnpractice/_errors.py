"""Errors as one line, for commands and logged skips."""

import re


def first_line(err):
    """The first line of an error's message, without TensorFlow's
    `{{function_node ...}}` prefix and `[Op:...]` suffix."""
    text = getattr(err, "message", None) or str(err) or type(err).__name__
    text = re.sub(r"\{\{function_node [^}]*\}\}\s*", "", text)
    text = re.sub(r"\s*\[Op:[^\]]*\].*$", "", text.strip().splitlines()[0])
    return text.strip() or type(err).__name__

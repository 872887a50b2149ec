"""What the small absl command-line tools share: one-line error messages."""

import re
import sys

from absl import flags


def first_line(err):
    """The first line of an error's message, without TensorFlow's
    `{{function_node ...}}` prefix and `[Op:...]` suffix."""
    text = getattr(err, "message", None) or str(err) or type(err).__name__
    text = re.sub(r"\{\{function_node [^}]*\}\}\s*", "", text)
    text = re.sub(r"\s*\[Op:[^\]]*\].*$", "", text.strip().splitlines()[0])
    return text.strip() or type(err).__name__


def flags_parser(prog):
    """An `absl.app.run(..., flags_parser=)` that reports a bad flag on one
    line, `PROG: error: ...`, and exits with status 2."""

    def parse(argv):
        try:
            return flags.FLAGS(argv)
        except flags.Error as err:
            print(f"{prog}: error: {first_line(err)}", file=sys.stderr)
            sys.exit(2)

    return parse

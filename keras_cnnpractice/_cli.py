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


HELP_FLAGS = ("-h", "--help", "-help", "--helpshort")


def command_help(prog):
    """The command's docstring (its `__main__` module's), then its own
    flags -- every flag defined by this project's modules or the script,
    none of absl's or TensorFlow's -- grouped by the module that defines
    them, with their defaults and choices."""
    main = sys.modules.get("__main__")
    parts = [(getattr(main, "__doc__", None) or f"{prog}\n").rstrip()]
    for module, defined in sorted(flags.FLAGS.flags_by_module_dict().items()):
        name = module.rsplit("/", 1)[-1]
        if not (module.startswith("keras_cnnpractice") or module in (
                "__main__", sys.argv[0]) or name.endswith(".py")):
            continue
        if defined:
            parts.append(flags.FLAGS.module_help(module))
    return "\n\n".join(parts) + "\n"


def flags_parser(prog):
    """An `absl.app.run(..., flags_parser=)` that reports a bad flag on one
    line, `PROG: error: ...`, and exits with status 2; `--help` prints the
    command's own flags (`command_help`) and exits with status 0."""

    def parse(argv):
        if any(arg in HELP_FLAGS for arg in argv[1:]):
            sys.stdout.write(command_help(prog))
            sys.exit(0)
        try:
            return flags.FLAGS(argv)
        except flags.Error as err:
            print(f"{prog}: error: {first_line(err)}", file=sys.stderr)
            sys.exit(2)

    return parse

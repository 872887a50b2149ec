"""What the commands share: absl flags parsed in one error style, `--help`
with the command's own flags, and TensorFlow started quietly (`_log`)."""

import sys

from absl import app
from absl import flags

from keras_cnnpractice._errors import first_line
from keras_cnnpractice.cli import _log

HELP_FLAGS = ("-h", "--help", "-help", "--helpshort")


def command_help(prog, doc):
    """`doc`, then the command's own flags -- every flag defined by this
    project's modules or the script, none of absl's or TensorFlow's --
    grouped by the module that defines them, with their defaults and
    choices."""
    parts = [(doc or f"{prog}\n").rstrip()]
    for module, defined in sorted(flags.FLAGS.flags_by_module_dict().items()):
        name = module.rsplit("/", 1)[-1]
        if not (module.startswith("keras_cnnpractice") or module in (
                "__main__", sys.argv[0]) or name.endswith(".py")):
            continue
        if defined:
            parts.append(flags.FLAGS.module_help(module))
    return "\n\n".join(parts) + "\n"


def flags_parser(prog, doc):
    """An `absl.app.run(..., flags_parser=)` that reports a bad flag on one
    line, `PROG: error: ...`, and exits with status 2; `--help` prints the
    command's own flags (`command_help`) and exits with status 0."""

    def parse(argv):
        if any(arg in HELP_FLAGS for arg in argv[1:]):
            sys.stdout.write(command_help(prog, doc))
            sys.exit(0)
        try:
            return flags.FLAGS(argv)
        except flags.Error as err:
            print(f"{prog}: error: {first_line(err)}", file=sys.stderr)
            sys.exit(2)

    return parse


def run(main, prog, doc, tensorflow=True):
    """Runs `main(argv)` as the command `prog` (`doc`: its `--help` text):
    flags parsed and checked first, then TensorFlow started
    (`_log.start_tensorflow`) when `tensorflow`, then `main`."""

    def start_and_run(argv):
        if tensorflow:
            _log.start_tensorflow()
        return main(argv)

    app.run(start_and_run, flags_parser=flags_parser(prog, doc))

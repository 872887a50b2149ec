"""A quiet log unless `--verbose`: TensorFlow's native INFO and WARNING
lines, its start-up notices and, on a machine without an NVIDIA driver,
its failed CUDA probe are kept out of stderr; Python logs of TensorFlow
and absl below WARNING too.

TensorFlow 2.21's C++ code logs through absl without initializing it, so
every native line goes to stderr whatever `TF_CPP_MIN_LOG_LEVEL` says.
The only place to drop them is the stream: stderr (file descriptor 2) is
passed through a filter process, which forwards every other line as it
comes and outlives a crash of the command (nothing it wrote is lost).

Imports inside functions: TensorFlow, in `start_tensorflow`, which must
first set up the stderr filter that hides its start-up lines.
"""

import os
import subprocess
import sys

from absl import flags
from absl import logging

flags.DEFINE_bool("verbose", False,
                  "Show TensorFlow's native and INFO logs (also: environment "
                  "variable KCP_VERBOSE=1).")

# Native lines logged before absl's initialization carry a zero date.
NATIVE_NOISE = (r"[IW]0000 00:00:",
                r"WARNING: All log messages before absl::InitializeLog",
                r"To enable the following instructions")
# TensorFlow's probe for a CUDA driver: noise where there is none, a real
# error where there is one.
NO_DRIVER_PROBE = r"E0000 00:00:\S+ +\d+ cuda_platform\.cc:\d+\] failed call to cuInit"

# A dropped native line may go on over more lines: a protocol buffer in
# text form (the tf.data service servers log their configuration so),
# dropped with it: only `name: value` lines whose value is a number, a
# quoted string, true/false or an ENUM, `name {`, `}` and blank lines.
_FILTER = """
import re, signal, sys
signal.signal(signal.SIGINT, signal.SIG_IGN)  # outlive a Ctrl-C'd command
noise = re.compile(sys.argv[1].encode())
value = rb'("([^"\\\\]|\\\\.)*"|-?[0-9][0-9.eE+-]*|true|false|[A-Z][A-Z0-9_]*)'
more = re.compile(rb"^\\s*(\\w+: " + value + rb"|\\w+ \\{|\\})?\\s*$")
dropping = False
for line in sys.stdin.buffer:
    dropping = bool(noise.match(line) or dropping and more.match(line))
    if not dropping:
        sys.stderr.buffer.write(line)
        sys.stderr.buffer.flush()
"""


def verbose():
    """Whether `--verbose` or `KCP_VERBOSE=1` asks for the full log."""
    return flags.FLAGS.verbose or os.environ.get("KCP_VERBOSE", "") not in (
        "", "0")


def noise_pattern(has_driver):
    """The regular expression of the lines the filter drops."""
    kinds = NATIVE_NOISE + (() if has_driver else (NO_DRIVER_PROBE,))
    return "^(" + "|".join(kinds) + ")"


def filter_stderr(pattern):
    """From now on, lines written to file descriptor 2 (by this process,
    its native code and the children it starts) that match `pattern` are
    dropped; the others are forwarded, in order, to the original stderr."""
    sys.stderr.flush()
    process = subprocess.Popen([sys.executable, "-c", _FILTER, pattern],
                               stdin=subprocess.PIPE)
    os.dup2(process.stdin.fileno(), 2)
    process.stdin.close()  # fd 2 is now the only writer of this process


def start_tensorflow():
    """Imports TensorFlow and finds its devices, quietly unless
    `verbose()`."""
    if not verbose():
        filter_stderr(noise_pattern(os.path.exists("/dev/nvidiactl")))
        logging.set_verbosity(logging.WARNING)
    import tensorflow as tf
    tf.config.list_physical_devices()
    if not verbose():
        tf.get_logger().setLevel("WARNING")

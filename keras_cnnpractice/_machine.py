"""What machine this is, for benchmark reports and per-machine caches."""

import pathlib
import platform


def cpu_model():
    """The CPU's model name from /proc/cpuinfo (else `platform.processor()`)."""
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"

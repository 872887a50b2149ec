"""Wall-clock time per epoch, for step-time figures that leave out tracing."""

import statistics
import time

import keras


class EpochTimer(keras.callbacks.Callback):
    """Records each epoch's wall time (training and validation) in
    `epoch_seconds`."""

    def __init__(self):
        super().__init__()
        self.epoch_seconds = []
        self._start = None

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.epoch_seconds.append(time.perf_counter() - self._start)

    def steady_epoch_seconds(self):
        """Median epoch time, leaving out the first epoch (graph tracing)
        when there is more than one; None before any epoch."""
        times = self.epoch_seconds[1:] or self.epoch_seconds
        return statistics.median(times) if times else None

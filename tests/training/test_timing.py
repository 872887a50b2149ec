"""EpochTimer."""

import keras
import numpy as np

from keras_cnnpractice.training import EpochTimer


def test_records_every_epoch_and_skips_the_first_for_steady_time():
    timer = EpochTimer()
    assert timer.steady_epoch_seconds() is None
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    model.fit(np.zeros((8, 2)), np.zeros((8, 1)), epochs=3, verbose=0,
              callbacks=[timer])
    assert len(timer.epoch_seconds) == 3 and min(timer.epoch_seconds) > 0
    assert timer.steady_epoch_seconds() == float(np.median(timer.epoch_seconds[1:]))

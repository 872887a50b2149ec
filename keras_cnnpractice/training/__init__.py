"""Training loop pieces: checkpoints, export, the `train.py` runner."""

from keras_cnnpractice.training.checkpoints import EpochCheckpoint
from keras_cnnpractice.training.checkpoints import latest_checkpoint
from keras_cnnpractice.training.checkpoints import newest_good_checkpoint
from keras_cnnpractice.training.checkpoints import nonfinite_variables
from keras_cnnpractice.training.checkpoints import restore_latest
from keras_cnnpractice.training.checkpoints import restore_newest_good
from keras_cnnpractice.training.curves import plot_training_curves
from keras_cnnpractice.training.explosion_guard import ExplosionGuard
from keras_cnnpractice.training.export import export_saved_model
from keras_cnnpractice.training.fixed_point_weights import store_weights_in_fixed_point
from keras_cnnpractice.training.regularization import add_l2
from keras_cnnpractice.training.sanity import check_initial_loss
from keras_cnnpractice.training.sanity import overfit_tiny
from keras_cnnpractice.training.timing import EpochTimer

__all__ = ["EpochCheckpoint", "EpochTimer", "ExplosionGuard", "add_l2",
           "check_initial_loss", "export_saved_model", "latest_checkpoint",
           "newest_good_checkpoint", "nonfinite_variables", "overfit_tiny",
           "plot_training_curves", "restore_latest", "restore_newest_good",
           "store_weights_in_fixed_point"]

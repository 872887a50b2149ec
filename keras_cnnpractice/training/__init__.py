"""Training loop pieces: checkpoints, export, the `train.py` runner.

Names are imported on first use, so `training.config` and
`training.train_flags` import without TensorFlow.
"""

from keras_cnnpractice._lazy import lazy_attributes

__getattr__, __all__ = lazy_attributes(__name__, {
    "checkpoints": ["EpochCheckpoint", "latest_checkpoint",
                    "newest_good_checkpoint", "nonfinite_variables",
                    "restore_latest", "restore_newest_good"],
    "config": ["TrainConfig"],
    "curves": ["plot_training_curves"],
    "explosion_guard": ["ExplosionGuard"],
    "export": ["export_saved_model"],
    "fixed_point_weights": ["store_weights_in_fixed_point"],
    "regularization": ["add_l2"],
    "sanity": ["check_initial_loss", "overfit_tiny"],
    "timing": ["EpochTimer"],
})

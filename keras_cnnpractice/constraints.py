"""Weight constraints for quantized training."""

import keras


@keras.saving.register_keras_serializable(package="keras_cnnpractice")
class WeightClip(keras.constraints.Constraint):
    """Clips weights to [-clip_value, clip_value] after every update.

    BinaryNet keeps its latent real-valued weights in [-1, 1]: beyond that
    the sign never changes and the straight-through gradient is cut anyway
    (Courbariaux, Hubara et al., 2016).
    """

    def __init__(self, clip_value=1.0):
        if clip_value <= 0:
            raise ValueError("clip_value must be positive. Received: "
                             f"clip_value={clip_value!r}")
        self.clip_value = clip_value

    def __call__(self, w):
        return keras.ops.clip(w, -self.clip_value, self.clip_value)

    def get_config(self):
        return {"clip_value": self.clip_value}

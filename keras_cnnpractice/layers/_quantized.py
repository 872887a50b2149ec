"""What QuantConv2D/QuantDense and the Binary presets share."""

from keras_cnnpractice import quantizers
from keras_cnnpractice.constraints import WeightClip


class QuantizersMixin:
    """`input_quantizer` / `kernel_quantizer` attributes and their config;
    mixed in before the Keras layer class."""

    def _set_quantizers(self, input_quantizer, kernel_quantizer):
        self.input_quantizer = quantizers.get(input_quantizer)
        self.kernel_quantizer = quantizers.get(kernel_quantizer)
        # Keras leaves XLA off for a model holding a layer whose quantizer
        # runs a compiled op (instead of failing in the XLA compiler).
        self.supports_jit = all(
            getattr(q, "supports_jit", True)
            for q in (self.input_quantizer, self.kernel_quantizer))

    def _quantized(self, inputs, kernel):
        if self.input_quantizer is not None:
            inputs = self.input_quantizer(inputs)
        if self.kernel_quantizer is not None:
            kernel = self.kernel_quantizer(kernel)
        return inputs, kernel

    def get_config(self):
        config = super().get_config()
        config.update({
            "input_quantizer": quantizers.serialize(self.input_quantizer),
            "kernel_quantizer": quantizers.serialize(self.kernel_quantizer)})
        return config


class BinaryPresetsMixin:
    """The BinaryNet defaults and the `scale_kernel` / `binary_input` config;
    mixed in before QuantConv2D / QuantDense."""

    @staticmethod
    def _presets(kwargs, scale_kernel, binary_input):
        """Fills `kwargs` with the binary defaults the caller did not set:
        sign input (if `binary_input`), sign (or XNOR-scaled sign) kernel,
        latent weights clipped to [-1, 1], no bias."""
        kwargs.setdefault("input_quantizer", "ste_sign" if binary_input else None)
        kwargs.setdefault("kernel_quantizer",
                          "scaled_ste_sign" if scale_kernel else "ste_sign")
        kwargs.setdefault("kernel_constraint", WeightClip(1.0))
        kwargs.setdefault("use_bias", False)
        return kwargs

    def get_config(self):
        config = super().get_config()
        config.update({"scale_kernel": self.scale_kernel,
                       "binary_input": self.binary_input})
        return config

"""GoogLeNet's Inception module and the factorized Inception-v3 variants."""

import keras

from keras_cnnpractice._validate import check_int
from keras_cnnpractice.layers import _sublayers as args

FACTORIZATIONS = (None, "5x5", "nxn")


@keras.saving.register_keras_serializable(package="keras_cnnpractice")
class InceptionModule(keras.layers.Layer):
    """Parallel 1x1, 3x3, 5x5 convolutions and 3x3 max pooling, concatenated.

    The widths are the columns of GoogLeNet's table (Szegedy et al., "Going
    Deeper with Convolutions", 2015, table 1); inception (3a) is
    `InceptionModule(64, 96, 128, 16, 32, 32)`.

    * `naive=True`: the module of figure 2(a): the convolutions run on the
      input directly and the pooled input is concatenated as it is, so the
      output grows by the input's channels (the `*_reduce` and `pool_proj`
      widths must be None).
    * default: figure 2(b): 1x1 reductions before the 3x3 and 5x5, and a 1x1
      projection after the pooling.
    * `factorization="5x5"`: Inception-v3's figure 5, the 5x5 branch as two
      3x3 convolutions (Szegedy et al., "Rethinking the Inception
      Architecture for Computer Vision", 2016).
    * `factorization="nxn"`: figure 6: the 3x3 branch as a 1xn + nx1 pair and
      the 5x5 branch as two such pairs (`n`, default 7).

    Args:
        branch1x1: filters of the 1x1 branch ("#1x1" in GoogLeNet's table 1).
        branch3x3_reduce: filters of the 1x1 reduction before the 3x3
            branch ("#3x3 reduce").
        branch3x3: filters of the 3x3 branch ("#3x3").
        branch5x5_reduce: filters of the 1x1 reduction before the 5x5
            branch ("#5x5 reduce").
        branch5x5: filters of the 5x5 branch ("#5x5").
        pool_proj: filters of the 1x1 projection after the pooling branch
            ("pool proj").
        naive: the naive module (no reductions, no projection).
        factorization: None, `"5x5"` or `"nxn"` (reduced form only).
        n: kernel length of the `"nxn"` factorization.
        batch_norm: BatchNormalization after each convolution (Inception-v2/3).
        activation, use_bias, kernel_initializer, kernel_regularizer: as in
            `Conv2D`, for every convolution.
        **kwargs: base `Layer` arguments.

    Input shape:
        `(batch, height, width, channels)`.

    Output shape:
        `(batch, height, width, out)`, `out` = the sum of the branch widths
        (the naive module adds `channels` for the pooling branch).
    """

    def __init__(self, branch1x1, branch3x3_reduce, branch3x3,
                 branch5x5_reduce, branch5x5, pool_proj, naive=False,
                 factorization=None, n=7, batch_norm=False, activation="relu",
                 use_bias=True, kernel_initializer="he_normal",
                 kernel_regularizer=None, **kwargs):
        super().__init__(**kwargs)
        for name, value in (("branch1x1", branch1x1), ("branch3x3", branch3x3),
                            ("branch5x5", branch5x5)):
            check_int(name, value, 1)
        reductions = {"branch3x3_reduce": branch3x3_reduce,
                      "branch5x5_reduce": branch5x5_reduce,
                      "pool_proj": pool_proj}
        if naive:
            given = {k: v for k, v in reductions.items() if v}
            if given:
                raise ValueError("The naive module has no reductions or "
                                 f"projection. Received: {given}")
            if factorization is not None:
                raise ValueError("factorization needs the reduced module. "
                                 f"Received: factorization={factorization!r}")
        else:
            for name, value in reductions.items():
                check_int(name, value, 1)
        if factorization not in FACTORIZATIONS:
            raise ValueError(f"factorization must be one of {FACTORIZATIONS}. "
                             f"Received: factorization={factorization!r}")
        check_int("n", n, 1)
        self.widths = dict(branch1x1=branch1x1,
                           branch3x3_reduce=branch3x3_reduce,
                           branch3x3=branch3x3,
                           branch5x5_reduce=branch5x5_reduce,
                           branch5x5=branch5x5, pool_proj=pool_proj)
        self.naive = naive
        self.factorization = factorization
        self.n = n
        self.batch_norm = batch_norm
        args.set_common(self, activation, use_bias, kernel_initializer,
                        kernel_regularizer)
        self.branches = self._make_branches()
        self.concat = keras.layers.Concatenate(dtype=self.dtype_policy,
                                               name="concat")

    def _make_branches(self):
        w, unit = self.widths, (lambda *a, **k: args.conv_unit(self, *a, **k))
        pool = keras.layers.MaxPooling2D(3, strides=1, padding="same",
                                         dtype=self.dtype_policy, name="pool")
        if self.naive:
            return [unit(w["branch1x1"], 1, "b1_1x1"),
                    unit(w["branch3x3"], 3, "b2_3x3"),
                    unit(w["branch5x5"], 5, "b3_5x5"),
                    [pool]]
        b2 = unit(w["branch3x3_reduce"], 1, "b2_reduce")
        b3 = unit(w["branch5x5_reduce"], 1, "b3_reduce")
        if self.factorization is None:
            b2 += unit(w["branch3x3"], 3, "b2_3x3")
            b3 += unit(w["branch5x5"], 5, "b3_5x5")
        elif self.factorization == "5x5":
            b2 += unit(w["branch3x3"], 3, "b2_3x3")
            b3 += unit(w["branch5x5"], 3, "b3_3x3a") + unit(w["branch5x5"], 3, "b3_3x3b")
        else:
            pair = (lambda width, tag: unit(width, (1, self.n), f"{tag}_1xn")
                    + unit(width, (self.n, 1), f"{tag}_nx1"))
            b2 += pair(w["branch3x3"], "b2")
            b3 += pair(w["branch5x5"], "b3a") + pair(w["branch5x5"], "b3b")
        return [unit(w["branch1x1"], 1, "b1_1x1"), b2, b3,
                [pool] + unit(w["pool_proj"], 1, "b4_proj")]

    def build(self, input_shape):
        shapes = [args.build_chain(branch, input_shape)
                  for branch in self.branches]
        self.concat.build(shapes)

    def call(self, inputs, training=None):
        return self.concat([args.call_chain(branch, inputs, training)
                            for branch in self.branches])

    def compute_output_shape(self, input_shape):
        w = self.widths
        width = w["branch1x1"] + w["branch3x3"] + w["branch5x5"]
        width += input_shape[-1] if self.naive else w["pool_proj"]
        return tuple(input_shape[:-1]) + (width,)

    def analysis_graph(self):
        """Structure for `keras_cnnpractice.analysis`: branches, concat."""
        return {"branches": self.branches, "merge": "concat", "post": []}

    def get_config(self):
        config = super().get_config()
        config.update({**self.widths, "naive": self.naive,
                       "factorization": self.factorization, "n": self.n,
                       "batch_norm": self.batch_norm,
                       **args.serialize_common(self)})
        return config

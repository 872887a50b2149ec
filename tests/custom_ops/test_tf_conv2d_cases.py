"""TensorFlow's own Conv2D kernel-test cases, run against our convolutions.

The cases are those of TensorFlow's
tensorflow/python/kernel_tests/nn_ops/conv_ops_test.py: Conv2DTest's value,
dilation, explicit-padding, backprop and gradient-checker cases, the
shrunk 2015 Inception shapes, DeepConv2DTest's Winograd-style shapes and
FusedConv2DTest's conv + bias + add chains, with TensorFlow's fills (1..N,
i / N, uniform [0, 1)), its hard-coded expected values and its tolerances.
Each case runs, forward and both gradients, through `im2col_conv2d`,
`fft_conv2d` and `winograd_conv2d` (F(2x2, 3x3) and F(4x4, 3x3)), eagerly
and in a `tf.function`, and the small families through `FastConv2D` with
every algorithm too. The reference is TensorFlow's hard-coded values where
the case has them, else float64 `tf.nn.conv2d` and its gradients. An op
that cannot compute a case (explicit padding, dilation for FFT and
Winograd, anything but a stride-1 3x3 kernel for Winograd, ...) must refuse
it with an error that says what it supports; the explicitly padded cases
then run on the input padded with `tf.pad`, VALID, as a user of our ops
would write them.

TensorFlow checks one output per case (the output, or one gradient); all
three are checked here with that case's tolerances (TensorFlow's backprop
tolerances for the gradients where it has none for the case). Where an
algorithm documents a looser bound (FFT spreads rounding errors over the
whole transform; Winograd's transforms amplify them), the bound is used,
as commented at `documented_bound`.

To stay under a minute on two cores: the Inception and DeepConv2D shapes
run eagerly only, through the ops only (see `modes`, `LAYER_CASES`), and
FFT skips the largest DeepConv2D shape (`TOO_BIG`). Not reproduced: NCHW
(GPU only in TensorFlow), grouped convolution (refused here), the raw
Conv2DBackprop* ops' size arguments, tf.nn.convolution's extra batch
dimensions (refused here), the DepthwiseConv2D and SeparableConv2D
classes, and the 400x400x256 `No_Winograd_Nonfused` shape (a cuDNN
autotuning regression check).
"""

import collections
import functools
import math

import numpy as np
import pytest
import tensorflow as tf

from keras_cnnpractice.custom_ops import conv_algorithms
from keras_cnnpractice.custom_ops import conv_autotune
from keras_cnnpractice.custom_ops import fft_conv
from keras_cnnpractice.custom_ops import im2col
from keras_cnnpractice.custom_ops import winograd
from keras_cnnpractice.layers import FastConv2D

# TensorFlow's tolerances, (atol, rtol): _VerifyValues (tol, also for
# explicit padding), _RunAndVerifyBackpropInput (assertAllCloseAccordingTo
# Type with atol=1e-5: rtol 1e-6 in float32), _RunAndVerifyBackpropFilter
# (assertArrayNear: absolute only).
FORWARD, INPUT_GRAD, FILTER_GRAD = (1e-5, 1e-5), (1e-5, 1e-6), (1e-5, 0.0)
DEFAULT_TOL = {"y": FORWARD, "dx": INPUT_GRAD, "dw": FILTER_GRAD}

Case = collections.namedtuple(
    "Case", "name x w strides padding dilations fill tol expected")


def case(name, x, w, strides=(1, 1), padding="VALID", dilations=(1, 1),
         fill="count", tol=None, **expected):
    """A TensorFlow case: NHWC input and HWIO filter shapes, (h, w) strides
    and dilations, "SAME", "VALID" or explicit [[top, bottom], [left,
    right]] padding, the fill of the operands and of the output gradient,
    (atol, rtol) per output ("y", "dx", "dw") over DEFAULT_TOL, and
    TensorFlow's hard-coded values of any output."""
    return Case(name, tuple(x), tuple(w), tuple(strides), padding,
                tuple(dilations), fill, {**DEFAULT_TOL, **(tol or {})},
                expected)


# Conv2DTest._VerifyValues: 1..N fills, hard-coded outputs; merged with the
# backprop tests of the same configuration (1..N output gradient), whose
# hard-coded gradients they carry too.
VALUE_CASES = [
    case("1x1_filter", [1, 2, 3, 3], [1, 1, 3, 3],
         y=[30, 36, 42, 66, 81, 96, 102, 126, 150, 138, 171, 204, 174, 216,
            258, 210, 261, 312]),
    case("empty", [0, 2, 3, 3], [1, 1, 3, 3], y=[]),
    case("2x2_filter", [1, 2, 3, 3], [2, 2, 3, 3],
         y=[2271, 2367, 2463, 2901, 3033, 3165],
         dx=[14, 32, 50, 100, 163, 226, 167, 212, 257, 122, 140, 158, 478,
             541, 604, 437, 482, 527],
         dw=[17, 22, 27, 22, 29, 36, 27, 36, 45, 32, 43, 54, 37, 50, 63, 42,
             57, 72, 62, 85, 108, 67, 92, 117, 72, 99, 126, 77, 106, 135, 82,
             113, 144, 87, 120, 153]),
    case("1x2_filter", [1, 2, 3, 3], [1, 2, 3, 3],
         y=[231, 252, 273, 384, 423, 462, 690, 765, 840, 843, 936, 1029]),
    case("2x2_filter_stride2", [1, 2, 3, 3], [2, 2, 3, 3], (2, 2),
         y=[2271, 2367, 2463]),
    case("2x2_filter_stride2_same", [1, 2, 3, 3], [2, 2, 3, 3], (2, 2),
         "SAME", y=[2271, 2367, 2463, 1230, 1305, 1380]),
    case("2x2_filter_stride1x2", [1, 3, 6, 1], [2, 2, 1, 1], (1, 2),
         y=[58, 78, 98, 118, 138, 158],
         dx=[1, 2, 2, 4, 3, 6, 7, 12, 11, 18, 15, 24, 12, 16, 15, 20, 18,
             24],
         dw=[161, 182, 287, 308]),
    case("kernel_smaller_than_stride_valid", [1, 7, 7, 1], [2, 2, 1, 1],
         (3, 3), y=[65, 95, 275, 305]),
    case("kernel_smaller_than_stride_same_3x3", [1, 3, 3, 1], [1, 1, 1, 1],
         (2, 2), "SAME", y=[1, 3, 7, 9]),
    case("kernel_smaller_than_stride_same_4x4", [1, 4, 4, 1], [1, 1, 1, 1],
         (2, 2), "SAME", y=[1, 3, 9, 11],
         dx=[1, 0, 2, 0, 0, 0, 0, 0, 3, 0, 4, 0, 0, 0, 0, 0], dw=[78]),
    case("kernel_smaller_than_stride_same_2x2", [1, 4, 4, 1], [2, 2, 1, 1],
         (3, 3), "SAME", y=[44, 28, 41, 16]),
    case("kernel_size_matches_input_size", [1, 2, 2, 1], [2, 2, 1, 2],
         y=[50, 60], dx=[5, 11, 17, 23], dw=[1, 2, 2, 4, 3, 6, 4, 8]),
    case("only_padding_returns_zeros", [1, 0, 2, 1], [1, 1, 1, 1],
         padding=[[1, 1], [1, 1]], y=[0] * 8),
    # Backprop tests without a forward twin.
    case("backprop_2x2_depth1", [1, 2, 3, 1], [2, 2, 1, 1],
         dx=[1, 4, 4, 3, 10, 8], dw=[5, 8, 14, 17]),
    case("backprop_empty_batch", [0, 2, 3, 1], [2, 2, 1, 1], dx=[],
         dw=[0, 0, 0, 0]),
    case("backprop_filter_empty", [1, 2, 3, 1], [2, 2, 1, 0], dw=[]),
    case("backprop_input_degenerate", [3, 1, 1, 2], [1, 3, 2, 3], (1, 2),
         dx=[0] * 6),
]

# _VerifyDilatedConvValues: against tf.nn.convolution, atol 1e-5, rtol 1e-4.
DILATED = {"y": (1e-5, 1e-4), "dx": (1e-5, 1e-4), "dw": (1e-5, 1e-4)}
DILATED_CASES = [
    case("2x2_filter_2x1_dilation", [1, 4, 4, 1], [2, 2, 1, 1],
         dilations=(2, 1), tol=DILATED),
    case("empty_dilation", [0, 2, 3, 3], [1, 1, 3, 3], dilations=(2, 1),
         tol=DILATED),
    case("2x2_filter_dilation", [1, 2, 3, 3], [2, 2, 3, 3],
         dilations=(1, 2), tol=DILATED),
    case("1x2_filter_dilation", [1, 2, 3, 3], [1, 2, 3, 3],
         dilations=(2, 1), tol=DILATED),
    case("kernel_size_matches_input_size_dilation", [1, 3, 3, 1],
         [2, 2, 1, 2], dilations=(2, 2), tol=DILATED),
    # The backprop dilation tests (GPU only in TensorFlow), not above.
    case("backprop_dilation_2x1", [1, 3, 6, 1], [2, 2, 1, 1],
         dilations=(2, 1)),
    case("backprop_dilation_1x2", [1, 2, 3, 1], [2, 2, 1, 1],
         dilations=(1, 2)),
    case("backprop_filter_empty_dilation", [1, 2, 3, 1], [2, 2, 1, 0],
         dilations=(1, 2)),
    case("backprop_input_empty_dilation", [0, 2, 3, 1], [2, 2, 1, 1],
         dilations=(1, 2)),
    case("backprop_depth3_dilation_2x2", [1, 3, 4, 3], [2, 2, 3, 3],
         dilations=(2, 2)),
    case("backprop_depth3_dilation_2x1", [1, 3, 2, 3], [2, 2, 3, 3],
         dilations=(2, 1), tol={"dx": (1e-4, 1e-6)}),
]


def _explicit(name, x, w, strides, padding, tol=1e-5, dilations=(1, 1)):
    return case(name, x, w, strides, padding, dilations,
                tol={"y": (tol, tol)})


# _VerifyExplicitPaddings: against VALID on the padded input, atol=rtol=tol.
EXPLICIT_CASES = [
    _explicit("0x0_padding", [1, 2, 3, 3], [2, 2, 3, 3], (1, 1),
              [[0, 0], [0, 0]]),
    _explicit("0x0_padding_stride2", [3, 4, 3, 2], [1, 1, 2, 1], (2, 2),
              [[0, 0], [0, 0]]),
    _explicit("1x1_padding", [1, 2, 3, 2], [2, 2, 2, 2], (1, 1),
              [[1, 1], [1, 1]]),
    _explicit("1x1_padding_1x1_filter", [1, 2, 2, 1], [1, 1, 1, 2], (1, 1),
              [[1, 1], [1, 1]]),
    _explicit("2x2_padding", [1, 2, 1, 2], [2, 1, 2, 1], (1, 1),
              [[2, 2], [2, 2]]),
    _explicit("2x2_padding_stride2x1", [1, 2, 1, 2], [1, 1, 2, 1], (2, 1),
              [[2, 2], [2, 2]]),
    _explicit("only_bottom_padding", [1, 2, 3, 3], [2, 2, 3, 2], (1, 1),
              [[0, 3], [0, 0]], tol=2e-5),
    _explicit("only_bottom_padding_stride2", [2, 2, 4, 3], [1, 2, 3, 2],
              (2, 2), [[0, 3], [0, 0]]),
    _explicit("only_top_right_padding", [1, 2, 3, 3], [2, 2, 3, 2], (1, 1),
              [[1, 0], [0, 2]], tol=5e-5),
    _explicit("only_top_right_padding_stride1x3", [1, 2, 4, 2],
              [2, 2, 2, 2], (1, 3), [[1, 0], [0, 2]]),
    _explicit("lots_padding", [1, 1, 1, 3], [2, 2, 3, 3], (1, 1),
              [[3, 4], [4, 2]]),
    _explicit("lots_padding_stride2x1", [1, 2, 1, 1], [2, 2, 1, 3], (2, 1),
              [[3, 4], [4, 2]]),
    _explicit("explicit_padding_with_dilations", [1, 3, 2, 1], [1, 2, 1, 2],
              (1, 1), [[1, 0], [0, 1]], dilations=(2, 1)),
    _explicit("explicit_padding_with_dilations_2x3", [1, 2, 3, 2],
              [3, 2, 2, 1], (1, 1), [[2, 1], [1, 2]], dilations=(2, 3)),
]


def _explicit_backprop(name, x, w, strides, padding, filter_err=1e-5,
                       dilations=(1, 1)):
    # The input-gradient `err` of TensorFlow's helper is unused there (it
    # asserts atol 1e-5 according to type); the filter gradient's is.
    return case(name, x, w, strides, padding, dilations,
                tol={"dw": (filter_err, 0.0)})


# _RunAndVerifyBackprop{Input,Filter}ExplicitPadding (TensorFlow skips the
# dilated ones on the CPU; here they run against the zero-stuffed kernel).
EXPLICIT_BACKPROP_CASES = [
    _explicit_backprop("backprop_padding_0x0", [1, 2, 3, 1], [2, 2, 1, 1],
                       (1, 1), [[0, 0], [0, 0]]),
    _explicit_backprop("backprop_padding_0x0_stride2", [1, 3, 4, 2],
                       [2, 2, 2, 3], (2, 2), [[0, 0], [0, 0]]),
    _explicit_backprop("backprop_padding_1x1", [1, 2, 3, 1], [2, 2, 1, 2],
                       (1, 1), [[1, 1], [1, 1]], filter_err=5e-5),
    _explicit_backprop("backprop_padding_1x1_stride1x2", [1, 2, 3, 2],
                       [1, 1, 2, 1], (1, 2), [[1, 1], [1, 1]]),
    _explicit_backprop("backprop_padding_1x1_dilation", [1, 4, 3, 1],
                       [2, 2, 1, 1], (1, 2), [[1, 1], [1, 1]],
                       dilations=(2, 2)),
    _explicit_backprop("backprop_padding_2x2_stride3x1", [2, 3, 1, 1],
                       [2, 1, 1, 1], (3, 1), [[2, 2], [2, 2]]),
    _explicit_backprop("backprop_padding_2x2_dilation", [1, 3, 6, 1],
                       [3, 2, 1, 1], (1, 2), [[2, 2], [2, 2]],
                       dilations=(2, 3)),
    _explicit_backprop("backprop_padding_1_8_4_1", [1, 2, 3, 1],
                       [2, 2, 1, 1], (1, 1), [[1, 8], [4, 2]],
                       filter_err=1e-4),
    _explicit_backprop("backprop_padding_1_8_4_1_stride3x1", [1, 5, 3, 1],
                       [3, 2, 1, 1], (3, 1), [[1, 8], [4, 2]]),
    _explicit_backprop("backprop_padding_5_0_2_2", [1, 3, 3, 1],
                       [2, 1, 1, 1], (1, 1), [[5, 0], [2, 2]],
                       filter_err=1e-4),
    _explicit_backprop("backprop_padding_5_0_2_2_dilation", [1, 4, 2, 1],
                       [3, 3, 1, 1], (1, 2), [[5, 0], [2, 2]],
                       dilations=(2, 1)),
]


def _gradient_check(name, batch, rows, cols, kh, kw, cin, cout, strides,
                    padding, input_err=3e-3, filter_err=3e-3):
    # ConstructAndTestGradient: operands i / N, numeric Jacobians within
    # max_err. Here the analytic gradients are compared with float64 ones,
    # max_err as the absolute tolerance (stricter than TensorFlow's
    # Jacobian check); TensorFlow checks the forward output's shape only.
    return case(name, [batch, rows, cols, cin], [kh, kw, cin, cout],
                strides, padding, fill="unit",
                tol={"dx": (input_err, 0.0), "dw": (filter_err, 0.0)})


GRADIENT_CASES = [
    _gradient_check("gradient_input_valid_stride1", 2, 5, 4, 3, 3, 2, 3,
                    (1, 1), "VALID"),
    _gradient_check("gradient_filter_valid_stride1", 4, 6, 5, 2, 2, 2, 3,
                    (1, 1), "VALID"),
    _gradient_check("gradient_input_valid_stride2", 2, 4, 5, 3, 3, 2, 3,
                    (2, 2), "VALID"),
    _gradient_check("gradient_filter_valid_stride2", 4, 6, 5, 2, 2, 2, 3,
                    (2, 2), "VALID"),
    _gradient_check("gradient_input_valid_stride3", 2, 7, 6, 3, 3, 4, 5,
                    (3, 3), "VALID"),
    _gradient_check("gradient_filter_valid_stride3", 2, 8, 7, 4, 4, 2, 3,
                    (3, 3), "VALID"),
    _gradient_check("gradient_input_same_stride1", 2, 7, 6, 3, 3, 2, 3,
                    (1, 1), "SAME"),
    _gradient_check("gradient_filter_same_stride1", 4, 6, 5, 2, 2, 2, 3,
                    (1, 1), "SAME"),
    _gradient_check("gradient_input_same_stride2", 2, 5, 4, 3, 3, 3, 3,
                    (2, 2), "SAME"),
    _gradient_check("gradient_filter_same_stride2", 4, 6, 5, 2, 2, 2, 3,
                    (2, 2), "SAME"),
    _gradient_check("gradient_input_same_stride3", 2, 7, 6, 3, 3, 4, 5,
                    (3, 3), "SAME"),
    _gradient_check("gradient_filter_same_stride3", 2, 8, 7, 4, 4, 2, 3,
                    (3, 3), "SAME"),
    _gradient_check("gradient_filter_same_stride2x1", 2, 8, 7, 4, 4, 2, 3,
                    (2, 1), "SAME"),
    _gradient_check("gradient_kernel_size_matches_input_size", 2, 4, 3, 4, 3,
                    2, 3, (1, 1), "VALID"),
    _gradient_check("gradient_1x1_padding_stride1", 2, 5, 4, 3, 3, 2, 3,
                    (1, 1), [[1, 1], [1, 1]], input_err=2.5e-3),
    _gradient_check("gradient_1x1_padding_stride2", 2, 4, 5, 3, 3, 2, 3,
                    (2, 2), [[1, 1], [1, 1]]),
    _gradient_check("gradient_2x2_padding_stride1", 2, 5, 4, 3, 3, 2, 3,
                    (1, 1), [[2, 2], [2, 2]], filter_err=5e-3),
    _gradient_check("gradient_1_2_3_4_padding_stride3x2", 2, 8, 5, 4, 2, 3,
                    2, (3, 2), [[1, 2], [3, 4]]),
    _gradient_check("gradient_4_3_2_1_padding_stride2x1", 3, 5, 7, 3, 2, 1,
                    2, (2, 1), [[4, 3], [2, 1]]),
    _gradient_check("gradient_0_0_0_5_padding_stride1x2", 2, 6, 7, 3, 4, 3,
                    2, (1, 2), [[0, 0], [0, 5]]),
]


def shrunk_inception_shapes(shrink=10):
    """GetShrunkInceptionShapes: (input, filter, stride, padding) of the
    2015 Inception layers with every depth divided by `shrink`."""
    inputs = [
        [4, 5, 5, 1248], [4, 8, 8, 384], [4, 8, 8, 384], [4, 8, 8, 2048],
        [4, 8, 8, 448], [4, 8, 8, 2048], [4, 8, 8, 2048], [4, 8, 8, 2048],
        [4, 8, 8, 1760], [4, 8, 8, 1760], [4, 8, 8, 1760], [4, 8, 8, 1760],
        [4, 17, 17, 192], [4, 17, 17, 192], [4, 17, 17, 1248],
        [4, 17, 17, 128], [4, 17, 17, 1248], [4, 17, 17, 224],
        [4, 17, 17, 192], [4, 17, 17, 192], [4, 17, 17, 1216],
        [4, 17, 17, 1216], [4, 17, 17, 224], [4, 17, 17, 192],
        [4, 17, 17, 192], [4, 17, 17, 1152], [4, 17, 17, 1152],
        [4, 17, 17, 192], [4, 17, 17, 160], [4, 17, 17, 1152],
        [4, 17, 17, 1024], [4, 17, 17, 128], [4, 17, 17, 1024],
        [4, 17, 17, 128], [4, 17, 17, 1024], [4, 17, 17, 128],
        [4, 17, 17, 768], [4, 17, 17, 128], [4, 17, 17, 128],
        [4, 17, 17, 768], [4, 17, 17, 768], [4, 35, 35, 96],
        [4, 35, 35, 288], [4, 35, 35, 64], [4, 35, 35, 288],
        [4, 35, 35, 256], [4, 35, 35, 48], [4, 35, 35, 256],
        [4, 35, 35, 96], [4, 35, 35, 192], [4, 35, 35, 192],
        [4, 35, 35, 192], [4, 73, 73, 64], [4, 73, 73, 64],
        [4, 147, 147, 24]]
    filters = [
        [1, 1, 1248, 128], [1, 3, 384, 384], [3, 1, 384, 384],
        [1, 1, 2048, 192], [3, 3, 448, 384], [1, 1, 2048, 320],
        [1, 1, 2048, 448], [1, 1, 2048, 384], [1, 1, 1760, 384],
        [1, 1, 1760, 192], [1, 1, 1760, 448], [1, 1, 1760, 320],
        [3, 3, 192, 192], [3, 3, 192, 192], [1, 1, 1248, 192],
        [3, 3, 128, 320], [1, 1, 1248, 128], [1, 3, 224, 224],
        [3, 1, 192, 256], [1, 3, 192, 256], [1, 1, 1216, 192],
        [1, 1, 1216, 96], [3, 1, 224, 224], [3, 3, 192, 224],
        [1, 3, 192, 192], [1, 1, 1152, 192], [1, 1, 1152, 128],
        [3, 1, 192, 192], [3, 3, 160, 192], [1, 1, 1152, 160],
        [1, 1, 1024, 128], [1, 3, 128, 192], [1, 1, 1024, 160],
        [3, 1, 128, 192], [1, 1, 1024, 256], [3, 1, 128, 128],
        [1, 1, 768, 192], [1, 3, 128, 128], [3, 3, 128, 128],
        [1, 1, 768, 128], [1, 1, 768, 320], [3, 3, 96, 96],
        [3, 3, 288, 384], [3, 3, 64, 96], [1, 1, 288, 64],
        [1, 1, 256, 64], [5, 5, 48, 64], [1, 1, 256, 48], [3, 3, 96, 96],
        [1, 1, 192, 32], [1, 1, 192, 64], [1, 1, 192, 48],
        [3, 3, 64, 192], [1, 1, 64, 64], [1, 1, 24, 64]]
    strides = [1] * 12 + [2, 1, 1, 2] + [1] * 25 + [2, 2] + [1] * 12
    valid = {12, 15, 41, 42, 52, 53, 54}
    for i, (x, w, s) in enumerate(zip(inputs, filters, strides)):
        yield ([*x[:3], x[3] // shrink], [*w[:2], w[2] // shrink,
                                          w[3] // shrink],
               s, "VALID" if i in valid else "SAME")


# Inception: uniform [0, 1) operands; TensorFlow compares devices at
# 1e-3 (forward), 1e-2 (input gradient) and 1e-4 (filter gradient), atol =
# rtol; the dilated forward test (stride 1 only) uses 1..N, dilation 2,
# atol 1e-5 and rtol 5e-4.
INCEPTION_CASES = []
for _i, (_x, _w, _s, _p) in enumerate(shrunk_inception_shapes()):
    INCEPTION_CASES.append(case(
        f"inception_{_i}", _x, _w, (_s, _s), _p, fill="uniform",
        tol={"y": (1e-3, 1e-3), "dx": (1e-2, 1e-2), "dw": (1e-4, 1e-4)}))
    if _s == 1:
        INCEPTION_CASES.append(case(
            f"inception_{_i}_dilated", _x, _w, (1, 1), _p, (2, 2),
            tol={k: (1e-5, 5e-4) for k in ("y", "dx", "dw")}))

# DeepConv2DTest: uniform [0, 1) operands, 3x3 kernels, stride 1, against
# the direct convolution at atol = rtol = 1e-5.
DEEP_CASES = [
    case(f"deep_conv2d_{i}_{padding.lower()}", x, w, (1, 1), padding,
         fill="uniform", tol={k: (1e-5, 1e-5) for k in ("y", "dx", "dw")})
    for padding in ("VALID", "SAME")
    for i, (x, w) in enumerate(zip(
        [[5, 5, 5, 1248], [3, 17, 17, 192], [2, 35, 35, 288],
         [2, 6, 8, 517], [2, 7, 4, 81], [3, 11, 3, 77]],
        [[3, 3, 1248, 128], [3, 3, 192, 192], [3, 3, 288, 384],
         [3, 3, 517, 64], [3, 3, 81, 77], [3, 3, 77, 181]]))]

CASES = (VALUE_CASES + DILATED_CASES + EXPLICIT_CASES
         + EXPLICIT_BACKPROP_CASES + GRADIENT_CASES + INCEPTION_CASES
         + DEEP_CASES)
CASE_BY_NAME = {c.name: c for c in CASES}
assert len(CASE_BY_NAME) == len(CASES)

# Cases the ops must refuse (testOpEdgeCases, testShapeFunctionEdgeCases
# and the expanded-batch tests), with TensorFlow's shapes.
REFUSED_CASES = [
    case("expanded_batch", [2, 5, 2, 3, 3], [1, 1, 3, 3]),
    case("zero_width_filter", [1, 1, 1, 1], [1, 0, 1, 1], padding="SAME"),
    case("depth_mismatch", [32, 20, 20, 3], [4, 4, 2, 2], padding="SAME"),
    case("grouped", [32, 20, 20, 8], [4, 4, 2, 16], padding="SAME"),
]

OPS = ["im2col", "fft", "winograd", "winograd4", "winograd6"]
ALGORITHMS = ["auto", "native", *OPS]


def fill(kind, shape, seed=0):
    """TensorFlow's operand values, float32: 1..N (_CreateNumpyTensor),
    i / N (ConstructAndTestGradient) or uniform [0, 1) (np.random.rand)."""
    n = math.prod(shape)
    if kind == "count":
        values = np.arange(1, n + 1)
    elif kind == "unit":
        values = np.arange(n) / max(n, 1)
    else:
        values = np.random.default_rng(seed).random(n)
    return values.reshape(shape).astype(np.float32)


def explicit(padding):
    return not isinstance(padding, str)


def output_shape(c):
    """TensorFlow's output shape for the case."""
    out = []
    for i in range(2):
        size, taps = c.x[1 + i], c.w[i]
        span = (taps - 1) * c.dilations[i] + 1
        if explicit(c.padding):
            size += sum(c.padding[i])
        if c.padding == "SAME":
            out.append(-(-size // c.strides[i]))
        else:
            out.append(max(size - span + c.strides[i], 0) // c.strides[i])
    return (c.x[0], *out, c.w[3])


def operands(c):
    return (fill(c.fill, c.x, 1), fill(c.fill, c.w, 2),
            fill(c.fill, output_shape(c), 3))


def pad_input(c, x):
    """The input with the case's explicit padding, else itself."""
    if not explicit(c.padding):
        return x
    return tf.pad(x, [[0, 0], *c.padding, [0, 0]])


def dilated(w, dilations):
    """`w` with `d - 1` zeros between its taps along each spatial axis: the
    undilated kernel of the same convolution (differentiable)."""
    for axis, d in enumerate(dilations):
        if d == 1 or w.shape[axis] == 0:
            continue
        taps = w.shape[axis]
        w = tf.expand_dims(w, axis + 1)
        pads = [[0, 0]] * len(w.shape)
        pads[axis + 1] = [0, d - 1]
        w = tf.pad(w, pads)
        shape = [*w.shape]
        w = tf.reshape(w, shape[:axis] + [taps * d] + shape[axis + 2:])
        w = tf.gather(w, tf.range((taps - 1) * d + 1), axis=axis)
    return w


def float64_conv2d(c):
    """{"y", "dx", "dw"}: the case by float64 tf.nn.conv2d and its
    gradients (of the explicitly padded input, and of the kernel with zeros
    between its taps: TensorFlow has no CPU gradient for dilations > 1)."""
    x, w, dy = (tf.constant(v, tf.float64) for v in operands(c))
    with tf.GradientTape() as tape:
        tape.watch([x, w])
        y = tf.nn.conv2d(pad_input(c, x), dilated(w, c.dilations), c.strides,
                         "VALID" if explicit(c.padding) else c.padding)
    dx, dw = tape.gradient(y, [x, w], output_gradients=dy)
    return {"y": y.numpy(), "dx": dx.numpy(), "dw": dw.numpy()}


@functools.cache
def reference(name):
    """The case's exact results: TensorFlow's hard-coded values where it
    has them, else `float64_conv2d`'s."""
    c = CASE_BY_NAME[name]
    want = float64_conv2d(c)
    for key, values in c.expected.items():
        want[key] = np.reshape(np.asarray(values, np.float64),
                               want[key].shape)
    return want


@pytest.mark.parametrize("name", [c.name for c in CASES if c.expected])
def test_tensorflow_values_are_float64_tf_nn_conv2d(name):
    """The hard-coded values transcribed here are what float64
    tf.nn.conv2d and its gradients compute (guards the transcription)."""
    c = CASE_BY_NAME[name]
    computed = float64_conv2d(c)
    for key, values in c.expected.items():
        np.testing.assert_array_equal(computed[key].ravel(), values)


def test_dilated_kernel_by_hand():
    w = tf.constant(np.arange(1.0, 5.0).reshape(2, 2, 1, 1))
    got = dilated(w, (2, 3))[:, :, 0, 0].numpy()
    np.testing.assert_array_equal(got, [[1, 0, 0, 2], [0, 0, 0, 0],
                                        [3, 0, 0, 4]])


# --- what each op refuses, in the order its checks run ----------------------

def _valid_span_exceeds_input(c):
    return c.padding == "VALID" and any(
        (c.w[i] - 1) * c.dilations[i] + 1 > c.x[1 + i] for i in range(2))


def _rank(c):
    return len(c.x) != 4


def _channels(c):
    return c.x[-1] != c.w[2]


def _empty_kernel(c):
    return min(c.w[:2]) == 0


def _not_3x3(c):
    return tuple(c.w[:2]) != (3, 3)


def _strided(c):
    return c.strides != (1, 1)


def _dilated(c):
    return c.dilations != (1, 1)


# (predicate, message) in the order each op checks; the first that holds is
# the refusal expected (ValueError or InvalidArgumentError, by mode and op).
_WINOGRAD = [
    (_strided, r"winograd_conv2d supports strides=1 only .*Received: "
               r"strides="),
    (_dilated, r"winograd_conv2d supports dilations=1 only .*Received: "
               r"dilations="),
    (lambda c: explicit(c.padding), r"winograd_conv2d supports "
                                     r"padding='SAME' or 'VALID'"),
    (_rank, r"rank 4"),
    (_not_3x3, r"needs a 3x3 filter|3x3"),
    (_channels, r"the input has \d+ channels but the filter expects \d+"),
    (lambda c: c.padding == "VALID" and min(c.x[1:3]) < 3,
     r"needs an input of at least 3x3 pixels"),
]
REFUSALS = {
    "im2col": [
        # TensorFlow's attr check: eagerly, then while tracing.
        (lambda c: explicit(c.padding),
         r"padding.* (is not in the list of allowed values|not in): "
         r"\"SAME\", \"VALID\""),
        (_rank, r"rank 4"),
        # The kernel, eagerly; TensorFlow's Conv2D shape function, tracing.
        (_channels, r"the input has \d+ channels but the filter expects \d+|"
                    r"Depth of input \(\d+\) is not a multiple of input "
                    r"depth of filter"),
        (_empty_kernel, r"needs a non-empty kernel"),
        # The kernel, eagerly; TensorFlow's Conv2D shape function, tracing.
        (_valid_span_exceeds_input, r"is larger than the input|Negative "
                                    r"dimension size caused by subtracting"),
    ],
    "fft": [
        (_rank, r"rank 4"),
        (_channels, r"the input has \d+ channels but the filter expects \d+"),
        (_empty_kernel, r"needs a non-empty kernel"),
        (lambda c: explicit(c.padding),
         r"padding must be 'SAME' or 'VALID'\. Received: padding="),
        (_dilated, r"fft_conv2d supports dilations=1 only .*Received: "
                   r"dilations="),
        (_valid_span_exceeds_input, r"the kernel is larger than the input"),
    ],
    "winograd": _WINOGRAD,
    "winograd4": _WINOGRAD,
    "winograd6": _WINOGRAD,
}


def refusal(op, c):
    """The message `op` must refuse case `c` with, or None."""
    for applies, message in REFUSALS[op]:
        if applies(c):
            return message
    return None


# Keras's and FastConv2D's own refusals, in the order they run.
LAYER_REFUSALS = [
    (lambda a, c: c.w[3] == 0, r"Expected a strictly positive value\. "
                               r"Received filters=0"),
    (lambda a, c: _empty_kernel(c), r"`kernel_size` argument must be a tuple "
                                    r"of 2 integers"),
    (lambda a, c: _strided(c) and _dilated(c),
     r"`strides > 1` not supported in conjunction with `dilation_rate > 1`"),
    (lambda a, c: a == "fft" and _dilated(c),
     r"FastConv2D algorithm 'fft' has no dilation"),
    (lambda a, c: a.startswith("winograd") and _not_3x3(c),
     r"FastConv2D algorithm 'winograd[46]?' computes 3x3 kernels only"),
    (lambda a, c: a.startswith("winograd") and _strided(c),
     r"FastConv2D algorithm 'winograd[46]?' computes stride 1 only"),
    (lambda a, c: a.startswith("winograd") and _dilated(c),
     r"FastConv2D algorithm 'winograd[46]?' has no dilation"),
    (lambda a, c: explicit(c.padding),
     r"`padding` must be either `'valid'` or `'same'`"),
    (lambda a, c: _rank(c), r"Kernel shape must have the same length as "
                            r"input"),
    (lambda a, c: _valid_span_exceeds_input(c),
     r"Computed output size would be zero or negative"),
]


def layer_refusal(algorithm, c):
    for applies, message in LAYER_REFUSALS:
        if applies(algorithm, c):
            return message
    return None


# --- running an op on a case -------------------------------------------------

def _fft_size(c):
    """Fh * Fw of fft_conv2d on the (explicitly padded) input."""
    area = 1
    for i in range(2):
        size, taps, stride = c.x[1 + i], c.w[i], c.strides[i]
        if explicit(c.padding):
            size += sum(c.padding[i])
        elif c.padding == "SAME":
            size = max(size, (-(-size // stride) - 1) * stride + taps)
        area *= fft_conv.fast_fft_size(size)
    return area


# The normwise bounds the docstrings of fft_conv2d and winograd_conv2d
# state, relative to max |exact| (and log2(Fh * Fw) for the FFT).
FFT_BOUND = 4e-7
WINOGRAD_BOUND = {"winograd": 2e-6, "winograd4": 3e-5, "winograd6": 5e-5}


def documented_bound(algorithm, c, key, want):
    """The largest error the algorithm documents for output `key` ("y",
    "dx", "dw") whose exact values are `want`; 0 where TensorFlow's
    tolerance is the bound."""
    scale = np.abs(want).max(initial=0)
    if algorithm == "fft":
        # The FFT spreads each rounding error over the whole transform: a
        # value that should be exactly zero (one that reads only explicit
        # padding) carries the error of the largest ones: 18 outputs or
        # gradients of the small cases miss TensorFlow's 1e-5 so, by up to
        # 1.2e-4, 1.8e-7 of their largest value.
        return FFT_BOUND * math.log2(max(_fft_size(c), 2)) * scale
    if algorithm in WINOGRAD_BOUND and key != "dw":
        # F(4x4, 3x3)'s and F(6x6, 3x3)'s transforms amplify rounding
        # errors: one input gradient of DeepConv2D's shapes misses
        # TensorFlow's 1e-5.
        return WINOGRAD_BOUND[algorithm] * scale
    return 0.0


def assert_within(got, want, tol, bound, what):
    atol, rtol = tol
    got = np.asarray(got, np.float64)
    assert got.shape == want.shape, (what, got.shape, want.shape)
    err = np.abs(got - want)
    allowed = np.maximum(atol + rtol * np.abs(want), bound)
    worst = np.argmax(err - allowed) if err.size else None
    assert (err <= allowed).all(), (
        f"{what}: error {err.flat[worst]:.3g} > allowed "
        f"{allowed.flat[worst]:.3g} at {np.unravel_index(worst, err.shape)}"
        f" (want {want.flat[worst]:.6g})")


def _op_conv(op, c, padding):
    """conv(x, w) by the functional op, TensorFlow's arguments."""
    if op == "im2col":
        return lambda x, w: im2col.im2col_conv2d(
            x, w, strides=c.strides, padding=padding, dilations=c.dilations)
    if op == "fft":
        return lambda x, w: fft_conv.fft_conv2d(
            x, w, strides=c.strides, padding=padding, dilations=c.dilations)
    tile = conv_algorithms.WINOGRAD_TILES[op]
    return lambda x, w: winograd.winograd_conv2d(
        x, w, padding, tile, strides=c.strides, dilations=c.dilations)


def _gradients(conv, w, x, dy):
    with tf.GradientTape() as tape:
        tape.watch(x)
        if isinstance(w, tf.Tensor):  # a layer's kernel variable is watched
            tape.watch(w)
        y = conv(x, w)
    dx, dw = tape.gradient(y, [x, w], output_gradients=dy)
    return y, dx, dw


def run(conv, x, w, dy, mode):
    """(y, dx, dw) of `conv(x, w)`, eagerly or in a tf.function."""
    fn = functools.partial(_gradients, conv, w)
    return (fn if mode == "eager" else graph(fn))(x, dy)


def graph(fn):
    """`fn` as a tf.function (without AutoGraph: no control flow here, and
    tracing is most of the cost of a small case)."""
    return tf.function(fn, autograph=False)


def check(outputs, c, algorithm):
    want = reference(c.name)
    for key, got in zip(("y", "dx", "dw"), outputs):
        assert_within(got, want[key], c.tol[key],
                      documented_bound(algorithm, c, key, want[key]),
                      f"{c.name} {key}")


MODES = ("eager", "tf.function")
BIG = {c.name for c in INCEPTION_CASES + DEEP_CASES}


def modes(c):
    """Both modes; eager alone for the Inception and DeepConv2D shapes
    (their numerics are those of the same kernels: tracing ~190 more
    functions would double the module's time, and every kind of case is
    traced in the smaller families)."""
    return MODES[:1] if c.name in BIG else MODES


REFUSED = (ValueError, tf.errors.InvalidArgumentError)


def as_valid(c):
    """The case on its explicitly padded input, VALID (itself otherwise)."""
    if not explicit(c.padding):
        return c
    (top, bottom), (left, right) = c.padding
    n, h, w, ch = c.x
    return c._replace(x=(n, h + top + bottom, w + left + right, ch),
                      padding="VALID")


def _id(pair):
    return f"{pair[0]}-{pair[1]}"


def _tensors(c):
    return tuple(tf.constant(v) for v in operands(c))


# fft_conv2d's kernel spectrum (in * out * Fh * (Fw / 2 + 1) complex
# values: 0.56 GB for 288 -> 384 channels at 35x35) makes this shape take
# 7 s for FFT alone, an FFT worst case (3x3 kernel, many channels) that the
# other DeepConv2D shapes cover in a fraction of the time.
TOO_BIG = {("deep_conv2d_2_valid", "fft"), ("deep_conv2d_2_same", "fft")}
OP_COMPUTES = [
    pytest.param(c.name, op, id=f"{c.name}-{op}", marks=[pytest.mark.skip(
        reason="FFT's kernel spectrum: 0.56 GB, 7 s")]
        if (c.name, op) in TOO_BIG else [])
    for c in CASES for op in OPS if refusal(op, as_valid(c)) is None]
OP_REFUSES = [(c.name, op) for c in CASES + REFUSED_CASES for op in OPS
              if refusal(op, c)]
CASE_BY_NAME.update((c.name, c) for c in REFUSED_CASES)


@pytest.mark.parametrize("name,op", OP_COMPUTES)
def test_op_computes_tensorflow_case(name, op):
    c = CASE_BY_NAME[name]
    conv = _op_conv(op, c, as_valid(c).padding)
    padded = lambda x, w: conv(pad_input(c, x), w)  # noqa: E731
    x, w, dy = _tensors(c)
    for mode in modes(c):
        check(run(padded, x, w, dy, mode), c, op)


@pytest.mark.parametrize("name,op", OP_REFUSES, ids=map(_id, OP_REFUSES))
def test_op_refuses_tensorflow_case(name, op):
    c = CASE_BY_NAME[name]
    x, w, dy = _tensors(c)
    for mode in modes(c):
        with pytest.raises(REFUSED, match=refusal(op, c)):
            run(_op_conv(op, c, c.padding), x, w, dy, mode)


def _layer(c, algorithm, dtype="float32"):
    return FastConv2D(c.w[3], c.w[:2], strides=c.strides,
                      padding=c.padding if explicit(c.padding)
                      else c.padding.lower(),
                      dilation_rate=c.dilations, algorithm=algorithm,
                      use_bias=False, kernel_initializer="zeros", dtype=dtype)


def _layer_conv(c, algorithm, w, dtype="float32"):
    """(layer, conv): a FastConv2D with its kernel variable set to `w`,
    and conv(x, kernel) calling it on the explicitly padded input."""
    layer = _layer(as_valid(c), algorithm, dtype)
    layer.build(as_valid(c).x)
    layer.kernel.assign(w)
    return layer, lambda x, kernel: layer(pad_input(c, x))


# FastConv2D runs the small families: its explicit algorithms call the ops
# above, and `auto` would time every algorithm on each of the ~110 Inception
# and DeepConv2D shapes (minutes), where the module must take under one.
LAYER_CASES = (VALUE_CASES + DILATED_CASES + EXPLICIT_CASES
               + EXPLICIT_BACKPROP_CASES + GRADIENT_CASES)
LAYER_COMPUTES = [(c.name, a) for c in LAYER_CASES for a in ALGORITHMS
                  if layer_refusal(a, as_valid(c)) is None]
LAYER_REFUSES = [(c.name, a) for c in LAYER_CASES + REFUSED_CASES
                 for a in ALGORITHMS if layer_refusal(a, c)]

# TensorFlow's oneDNN Conv2D returns an empty batch in the input's shape
# (keras.layers.Conv2D too): "native" inherits it, `auto` rejects it. Which
# dtypes oneDNN takes depends on the CPU: float32 on every x86 machine seen,
# float16 and bfloat16 too where the CPU has AVX512_FP16 (an Intel Xeon of
# the Sapphire Rapids kind), so each dtype is probed.
@functools.cache
def _onednn_empty_batch_bug(dtype):
    y = tf.nn.conv2d(tf.zeros([0, 2, 2, 1], dtype),
                     tf.zeros([2, 2, 1, 1], dtype), 1, "VALID")
    return y.shape[1] != 1


def _tensorflow_fails(c, algorithm, dtype="float32"):
    valid = as_valid(c)
    return (algorithm == "native" and c.x[0] == 0
            and output_shape(valid) != valid.x
            and _onednn_empty_batch_bug(dtype))


def _xfail_where_tensorflow_fails(request, c, algorithm, dtype="float32"):
    if _tensorflow_fails(c, algorithm, dtype):
        request.applymarker(pytest.mark.xfail(
            reason=f"TensorFlow's oneDNN Conv2D ({dtype}): wrong shape for a "
                   "batch of 0", strict=True))


@pytest.fixture(scope="module", autouse=True)
def conv_cache(tmp_path_factory):
    """One algorithm cache for the module: `auto` measures a shape once."""
    path = tmp_path_factory.mktemp("conv_cache") / "conv_algorithms.json"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(conv_autotune.CACHE_ENV, str(path))
        yield path


@pytest.mark.parametrize("name,algorithm", LAYER_COMPUTES,
                         ids=map(_id, LAYER_COMPUTES))
def test_fast_conv2d_computes_tensorflow_case(name, algorithm, request):
    c = CASE_BY_NAME[name]
    _xfail_where_tensorflow_fails(request, c, algorithm)
    x, w, dy = _tensors(c)
    layer, conv = _layer_conv(c, algorithm, w)
    for mode in MODES:
        outputs = run(conv, x, layer.kernel, dy, mode)
        check(outputs, c, layer.chosen_algorithm)


@pytest.mark.parametrize("name,algorithm", LAYER_REFUSES,
                         ids=map(_id, LAYER_REFUSES))
def test_fast_conv2d_refuses_tensorflow_case(name, algorithm):
    c = CASE_BY_NAME[name]
    x, w, dy = _tensors(c)
    for mode in MODES:
        with pytest.raises(REFUSED, match=layer_refusal(algorithm, c)):
            layer = _layer(c, algorithm)
            (layer if mode == "eager" else graph(layer))(x)


# --- dtypes ------------------------------------------------------------------
# Conv2DTest runs its cases in float32, float16 and float64, and the
# forward values in int32 too. Our ops compute float32 only and refuse the
# others; FastConv2D computes every float dtype (the custom algorithms in
# float32, cast back) and int32 with "native" alone.

@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("dtype", ["float16", "float64", "int32"])
def test_op_refuses_other_dtypes(op, dtype):
    c = CASE_BY_NAME["kernel_size_matches_input_size"]._replace(
        w=(3, 3, 1, 2), padding="SAME")
    x, w = (tf.cast(v, dtype) for v in operands(c)[:2])
    message = (rf"computes in float32; cast the operands first\. "
               rf"Received: x\.dtype={dtype}")
    for mode in MODES:
        conv = _op_conv(op, c, "SAME")
        with pytest.raises((*REFUSED, TypeError), match=message):
            (conv if mode == "eager" else graph(conv))(x, w)


DTYPE_TOL = {"float16": (1e-3, 1e-3)}  # _VerifyValues' fp16_tol
LAYER_DTYPE_CASES = [(c.name, a, dtype) for c in VALUE_CASES
                     for a in ALGORITHMS for dtype in ("float16", "float64")
                     if layer_refusal(a, as_valid(c)) is None]


@pytest.mark.parametrize("name,algorithm,dtype", LAYER_DTYPE_CASES,
                         ids=["-".join(p) for p in LAYER_DTYPE_CASES])
def test_fast_conv2d_computes_float16_and_float64(name, algorithm, dtype,
                                                  request):
    c = CASE_BY_NAME[name]
    _xfail_where_tensorflow_fails(request, c, algorithm, dtype)
    if dtype in DTYPE_TOL:
        c = c._replace(tol=dict.fromkeys(c.tol, DTYPE_TOL[dtype]))
    x, w, dy = (tf.cast(v, dtype) for v in _tensors(c))
    layer, conv = _layer_conv(c, algorithm, w, dtype)
    # Eager only: a dtype is cast the same way traced or not.
    outputs = run(conv, x, layer.kernel, dy, "eager")
    assert all(v.dtype == dtype for v in outputs)
    check(outputs, c, layer.chosen_algorithm)
    if (algorithm, dtype) == ("auto", "float64") and tf.size(outputs[0]):
        # Only TensorFlow's own kernel computes in float64 (an empty output
        # is exact by any algorithm).
        assert layer.chosen_algorithm == "native"


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_fast_conv2d_int32_is_native_only(algorithm):
    c = CASE_BY_NAME["2x2_filter"]
    x, w, _ = (tf.cast(v, tf.int32) for v in _tensors(c))
    if algorithm == "native":
        layer, conv = _layer_conv(c, algorithm, w, "int32")
        for mode in MODES:
            y = (conv if mode == "eager" else graph(conv))(x, None)
            np.testing.assert_array_equal(y.numpy().ravel(), c.expected["y"])
        return
    message = (r"measured in floating point only: dtype must be one of "
               r"\['bfloat16', 'float16', 'float32', 'float64'\]"
               if algorithm == "auto" else
               r"serves floating-point dtypes only \('native' computes "
               r"int32\)")
    with pytest.raises(ValueError, match=message):
        _layer(c, algorithm, "int32")


# --- FusedConv2DTest: conv + bias + add chains, exact integer results --------

def _fused_chains(conv, x):
    """FusedConv2DTest's chains; conv(x, offset, bias) convolves x (SAME)
    with its 1..16 filter plus `offset`, then adds its 1..2 bias if asked."""
    conv1 = conv(x, 0, False)
    conv2 = conv(conv1, 1, False)
    return {
        "add_with_ref_count_one": conv(conv1, -1, True) + conv2,
        "add_with_ref_count_two_and_run_add_last": conv(conv2, -1, True)
        + conv1,
        "add_with_ref_count_two_and_run_add_first": tf.nn.relu(
            conv(conv1, -1, True) + conv2) + conv2,
        "add_with_ref_count_two_and_no_dependence": tf.nn.relu(
            conv(conv1, -1, True) + conv2) + tf.nn.relu(conv2),
        "add_with_same_src_and_add_tensor_buffer": conv(conv1, 0, True)
        + conv1,
    }


FUSED_EXPECTED = {
    "add_with_ref_count_one": [
        113377, 125570, 77305, 86738, 19433, 22226, 60681, 70722, 36291,
        43718, 7143, 9206, 9785, 12098, 4783, 6366, 779, 1134],
    "add_with_ref_count_two_and_run_add_last": [
        1907175, 2253505, 780921, 953718, 118417, 152307, 536701, 680370,
        186709, 252946, 23623, 35226, 51217, 71683, 14943, 23474, 1558,
        2903],
    "add_with_ref_count_two_and_run_add_first": [
        176161, 194450, 120673, 134822, 30545, 34734, 96041, 111102, 58149,
        69289, 11745, 14839, 15833, 19302, 7965, 10339, 1345, 1877],
    "add_with_ref_count_two_and_no_dependence": [
        176161, 194450, 120673, 134822, 30545, 34734, 96041, 111102, 58149,
        69289, 11745, 14839, 15833, 19302, 7965, 10339, 1345, 1877],
    "add_with_same_src_and_add_tensor_buffer": [
        57157, 63298, 39249, 44026, 9971, 11402, 31193, 36306, 19126, 22948,
        3970, 5060, 5135, 6350, 2666, 3524, 461, 674],
}
FUSED_CASE = case("fused", [1, 3, 3, 2], [2, 2, 2, 2], padding="SAME")


def _fused_conv(name):
    """(conv(x, offset, bias) of `_fused_chains` by an op or FastConv2D,
    the layers by (offset, bias))."""
    f = fill("count", FUSED_CASE.w)
    b = fill("count", [2])
    if name in OPS:
        op = _op_conv(name, FUSED_CASE, "SAME")
        return (lambda x, offset, bias: op(x, f + offset)
                + (b if bias else 0)), {}
    layers = {}
    for offset, bias in [(0, False), (1, False), (-1, True), (0, True)]:
        layer = FastConv2D(2, 2, algorithm=name.split(":")[1],
                           use_bias=bias)
        layer.build(FUSED_CASE.x)
        layer.set_weights([f + offset] + ([b] if bias else []))
        layers[offset, bias] = layer
    return lambda x, offset, bias: layers[offset, bias](x), layers


# 2x2 kernels: Winograd refuses them (above).
@pytest.mark.parametrize("name", ["im2col", "fft", "FastConv2D:auto",
                                  "FastConv2D:native", "FastConv2D:im2col",
                                  "FastConv2D:fft"])
def test_fused_conv2d_chains(name):
    x = tf.constant(fill("count", FUSED_CASE.x))
    conv, layers = _fused_conv(name)
    chains = functools.partial(_fused_chains, conv)
    for mode in MODES:
        got = (chains if mode == "eager" else graph(chains))(x)
        algorithm = layers[0, False].chosen_algorithm if layers else name
        for chain, want in FUSED_EXPECTED.items():
            want = np.asarray(want, np.float64).reshape(FUSED_CASE.x)
            # TensorFlow asserts exact integers. An FFT result is within
            # its documented bound per convolution feeding it (three).
            bound = 3 * documented_bound(algorithm, FUSED_CASE, "y", want)
            assert_within(got[chain], want, (0, 0), bound, chain)

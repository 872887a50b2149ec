"""Convolution through the FFT: `fft_conv2d`.

By the convolution theorem a 2-D cross-correlation (what `tf.nn.conv2d`
computes) is a pointwise product in the frequency domain: with the input
zero padded (SAME/VALID as TensorFlow pads) to `Hp x Wp` and every signal
transformed at an FFT size `Fh x Fw >= Hp x Wp`, the stride-1 output is

    y[n, :, :, o] = irfft2d( sum_c X[n, c] * conj(W[c, o]) )[:Hp-kh+1, :Wp-kw+1]

(no wrap-around reaches those positions, so the circular correlation is the
linear one there). The input goes through `tf.signal.rfft2d`, the output
through `tf.signal.irfft2d`; the sum over input channels is, at every
frequency, a complex `[batch, in] x [in, out]` matrix product. The kernel's
transform is computed once per call; since the kernel has only `kh x kw`
non-zero taps, it is a direct DFT of those taps done as two complex matrix
products (cheaper than `in * out` zero-padded FFTs). FFT sizes are rounded
up to the next size without prime factors above 11. Mathieu, Henaff &
LeCun, "Fast Training of Convolutional Networks through FFTs", ICLR 2014.

The cost hardly depends on the kernel size, so FFT wins over the direct
convolution for large kernels (9x9 and up) and loses for small ones. The
kernel's transform, `in * out * Fh * (Fw / 2 + 1)` complex values, does not
shrink with the batch: at batch 1 it dominates and FFT loses even for large
kernels (the whole image is one FFT tile; tiling it, overlap-save, is not
done here). Stride
is handled by computing the stride-1 output and keeping every s-th row and
column: (s_h * s_w - 1) / (s_h * s_w) of the work is thrown away, which is
why FFT convolution is a poor fit for strided layers.

Gradients are FFT correlations too (`tf.custom_gradient`, reusing the
forward's spectra): the input gradient is the full convolution of the
(zero-upsampled) output gradient with the kernel, `irfft2d(G * W)`; the
filter gradient is the correlation of the padded input with the output
gradient, `sum_n X * conj(G)`, transformed back only at the `kh x kw` taps
(a pruned inverse DFT, again two complex matrix products).
"""

import collections

import numpy as np
import tensorflow as tf

from keras_cnnpractice._validate import pair
from keras_cnnpractice.custom_ops._conv_args import float32_operand


def fast_fft_size(n):
    """The smallest size >= max(n, 1) with no prime factor above 11.

    TensorFlow's CPU FFT handles such sizes with small-radix passes; larger
    primes fall back to slower algorithms (a 67-point FFT took 4x the time
    of a 64-point one). Rounding further up, to 2^a 3^b 5^c, costs more than
    it saves: the frequency-domain product grows with the FFT size, and
    66 (2 * 3 * 11) beat 72 by 10-20% for an 11x11 kernel on 56x56 inputs.
    """
    size = max(n, 1)
    while True:
        rest = size
        for prime in (2, 3, 5, 7, 11):
            while rest % prime == 0:
                rest //= prime
        if rest == 1:
            return size
        size += 1


# One spatial axis: input size, kernel taps, stride, zero padding before the
# input, the stride-1 output length of the padded input, the (strided)
# output length and the FFT size (>= the padded input, whose zero padding
# after the input extends up to the FFT size).
_Axis = collections.namedtuple(
    "_Axis", "size taps stride pad_before full out fft")


def _axis(size, taps, stride, padding):
    if padding == "VALID":
        out, pads = -(-(size - taps + 1) // stride), (0, 0)
    else:
        out = -(-size // stride)
        total = max((out - 1) * stride + taps - size, 0)
        pads = (total // 2, total - total // 2)
    padded = size + sum(pads)
    return _Axis(size, taps, stride, pads[0], padded - taps + 1, out,
                 fast_fft_size(padded))


def _check(x, w, strides, padding, dilations):
    """Validates the operands; returns the (height, width) `_Axis` pair."""
    if x.shape.rank != 4 or w.shape.rank != 4:
        raise ValueError(
            "fft_conv2d needs an NHWC input and a [kh, kw, in, out] filter "
            f"(rank 4 each). Received: x.shape={x.shape}, w.shape={w.shape}")
    if None in x.shape[1:] or None in w.shape:
        raise ValueError(
            "fft_conv2d needs static input height, width and channels and a "
            f"static filter shape. Received: x.shape={x.shape}, "
            f"w.shape={w.shape}")
    if x.shape[3] != w.shape[2]:
        raise ValueError(
            f"fft_conv2d: the input has {x.shape[3]} channels but the filter "
            f"expects {w.shape[2]}. Received: x.shape={x.shape}, "
            f"w.shape={w.shape}")
    if min(w.shape[:2]) < 1:
        raise ValueError("fft_conv2d needs a non-empty kernel. Received: "
                         f"w.shape={w.shape}")
    if padding not in ("SAME", "VALID"):
        raise ValueError("padding must be 'SAME' or 'VALID'. Received: "
                         f"padding={padding!r}")
    strides = pair("strides", strides)
    if min(strides) < 1:
        raise ValueError(f"strides must be >= 1. Received: strides={strides}")
    if pair("dilations", dilations) != (1, 1):
        raise ValueError(
            "fft_conv2d supports dilations=1 only (the kernel's transform is "
            "that of its contiguous taps); use im2col_conv2d or tf.nn.conv2d "
            f"for dilated convolutions. Received: dilations={dilations!r}")
    if padding == "VALID" and (w.shape[0] > x.shape[1]
                               or w.shape[1] > x.shape[2]):
        raise ValueError(
            "fft_conv2d with padding='VALID': the kernel is larger than the "
            f"input. Received: x.shape={x.shape}, w.shape={w.shape}")
    return tuple(_axis(x.shape[1 + i], w.shape[i], strides[i], padding)
                 for i in range(2))


def _dft(axis, bins, sign):
    """exp(sign * 2 pi i k t / fft) for k < bins, t < taps: complex64
    [bins, taps]."""
    angle = 2 * np.pi * np.outer(np.arange(bins), np.arange(axis.taps))
    return tf.constant(np.exp(sign * 1j * angle / axis.fft), tf.complex64)


def _half(axis):
    """Bins of a real FFT along `axis` (the last one of rfft2d)."""
    return axis.fft // 2 + 1


def _kernel_spectrum(w, rows, cols):
    """conj(rfft2d(w)) at FFT size (rows.fft, cols.fft), as complex64
    [Fh, Fw // 2 + 1, in, out]: the taps' DFT as two complex matrix
    products, along the height, then along the width."""
    kh, kw, cin, cout = w.shape
    # conj(e^(-i t)) = e^(i t)
    by_rows = _dft(rows, rows.fft, 1) @ tf.reshape(
        tf.cast(w, tf.complex64), [kh, kw * cin * cout])
    spectrum = _dft(cols, _half(cols), 1) @ tf.reshape(
        by_rows, [rows.fft, kw, cin * cout])
    return tf.reshape(spectrum, [rows.fft, _half(cols), cin, cout])


def _kernel_from_spectrum(spectrum, rows, cols):
    """irfft2d(conj(spectrum)) at the kh x kw taps only, as float32
    [kh, kw, in, out], for a complex [Fh, Fw // 2 + 1, in, out] spectrum:
    the adjoint of `_kernel_spectrum`'s two products, with irfft's weights
    (bins other than 0 and Nyquist stand for their mirror images too)."""
    fft_h, bins, cin, cout = spectrum.shape
    weight = np.full(bins, 2.0 / (rows.fft * cols.fft))
    weight[0] /= 2
    if cols.fft % 2 == 0:
        weight[-1] /= 2
    by_cols = tf.linalg.matmul(
        _dft(cols, bins, -1) * tf.constant(weight[:, None], tf.complex64),
        tf.reshape(spectrum, [fft_h, bins, cin * cout]), transpose_a=True)
    taps = tf.linalg.matmul(
        _dft(rows, fft_h, -1),
        tf.reshape(by_cols, [fft_h, cols.taps * cin * cout]), transpose_a=True)
    return tf.reshape(tf.math.real(taps), [rows.taps, cols.taps, cin, cout])


def _spectrum(v, rows, cols, lead, size):
    """rfft2d over height and width of NHWC `v`, of (height, width) `size`,
    placed `lead` (rows, columns) into an all-zero Fh x Fw frame: complex64
    [Fh, Fw // 2 + 1, N, C].

    The frame is padded here, not by `rfft2d`'s `fft_length`: `rfft2d`
    leaves a tensor with no elements unpadded and then rejects it as shorter
    than `fft_length` (a batch of 0, or no output channels in the gradient).
    """
    pads = [[0, 0]] + [[before, axis.fft - before - length] for axis, before,
                       length in zip((rows, cols), lead, size)] + [[0, 0]]
    s = tf.signal.rfft2d(tf.transpose(tf.pad(v, pads), [0, 3, 1, 2]),
                         fft_length=[rows.fft, cols.fft])
    return tf.transpose(s, [2, 3, 0, 1])


def _signal(s, rows, cols, height, width):
    """irfft2d of a [Fh, Fw // 2 + 1, N, C] spectrum, NHWC, cropped."""
    v = tf.signal.irfft2d(tf.transpose(s, [2, 3, 0, 1]),
                          fft_length=[rows.fft, cols.fft])
    return tf.transpose(v[:, :, :height, :width], [0, 2, 3, 1])


def _upsampled(dy, rows, cols):
    """The stride-1 output grid's gradient: dy at every s-th position."""
    if rows.stride == cols.stride == 1:
        return dy
    n, oh, ow, c = tf.unstack(tf.shape(dy))
    spread = tf.pad(dy[:, :, None, :, None, :],
                    [[0, 0], [0, 0], [0, rows.stride - 1], [0, 0],
                     [0, cols.stride - 1], [0, 0]])
    spread = tf.reshape(spread, [n, oh * rows.stride, ow * cols.stride, c])
    return spread[:, :rows.full, :cols.full, :]


def fft_conv2d(x, w, strides=1, padding="SAME", dilations=1, name=None):
    """`tf.nn.conv2d(x, w, strides, padding)` computed through the FFT.

    Args:
        x: `[batch, height, width, in_channels]` float32 input (NHWC) with
            static height, width and channels.
        w: `[kh, kw, in_channels, out_channels]` float32 filter.
        strides: int or pair of ints >= 1 (computed at stride 1, then
            subsampled: wasteful).
        padding: `"SAME"` or `"VALID"` (case-insensitive).
        dilations: 1 (or (1, 1)), accepted for `tf.nn.conv2d`'s signature;
            any other value is refused.
        name: optional name scope.

    Returns:
        `[batch, out_height, out_width, out_channels]` float32, what
        `tf.nn.conv2d` returns. Differentiable with respect to `x` and `w`
        through FFT correlations.

    Accuracy:
        Normwise, not elementwise. The FFT spreads each rounding error over
        the whole transform, so every value carries an error of the size of
        the largest ones, and a value that should be exactly zero (one that
        reads only zero padding) comes out near 1e-7 of the largest. For
        the output and both gradients, with `Fh x Fw` the FFT size (the
        padded input, rounded up as `fast_fft_size` does):

            max|result - exact| <= 4e-7 * log2(max(Fh * Fw, 2)) * max|exact|

        (largest measured: 1.3e-7 * log2(Fh * Fw) * max |exact| on
        TensorFlow's own Conv2D test cases, 3.4e-8 on random operands; see
        tests/custom_ops/test_tf_conv2d_cases.py and test_fft_conv.py).
        The bound assumes no massive cancellation: where the result is far
        smaller than its operands (max |exact| much below the norms of `x`
        and `w`), the error scales with the operands instead.

    Raises:
        ValueError: non-float32 operands, ranks other than 4, unknown
            spatial sizes, channels that do not match, strides < 1,
            dilations other than 1, a padding other than SAME/VALID, a
            VALID kernel larger than the input.
    """
    x = float32_operand(x, "x", "fft_conv2d")
    w = float32_operand(w, "w", "fft_conv2d")
    rows, cols = _check(x, w, strides, str(padding).upper(), dilations)

    @tf.custom_gradient
    def conv(x, w):
        x_spectrum = _spectrum(x, rows, cols,
                               (rows.pad_before, cols.pad_before),
                               (rows.size, cols.size))
        w_spectrum = _kernel_spectrum(w, rows, cols)  # conj(W)
        full = _signal(x_spectrum @ w_spectrum, rows, cols, rows.full,
                       cols.full)
        y = full[:, :(rows.out - 1) * rows.stride + 1:rows.stride,
                 :(cols.out - 1) * cols.stride + 1:cols.stride, :]

        def grad(dy):
            g_spectrum = _spectrum(_upsampled(dy, rows, cols), rows, cols,
                                   (0, 0), (rows.full, cols.full))
            # Full convolution of dy with the kernel: G * W.
            dx = _signal(tf.linalg.matmul(g_spectrum, w_spectrum,
                                          adjoint_b=True),
                         rows, cols, rows.pad_before + rows.size,
                         cols.pad_before + cols.size)
            # Correlation of the input with dy: sum_n X * conj(G).
            dw = _kernel_from_spectrum(
                tf.linalg.matmul(x_spectrum, g_spectrum, adjoint_a=True),
                rows, cols)
            return dx[:, rows.pad_before:, cols.pad_before:, :], dw

        return y, grad

    with tf.name_scope(name or "fft_conv2d"):
        return conv(x, w)

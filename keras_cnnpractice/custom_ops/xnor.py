"""Binary (XNOR-popcount) inference ops: `bitpack`, `xnor_matmul`, `xnor_conv2d`.

A +-1 vector is stored as bits (1 for -1, i.e. negative or NaN; 0 for +1,
so 0 maps to +1 as in `ste_sign`), 32 or 64 per int32/int64 word, least
significant bit first. The dot product of two such vectors of length d is
`d - 2 * popcount(a XOR b)`: one XOR and one popcount per 64 multiply-adds
(Rastegari et al., "XNOR-Net", 2016; Courbariaux, Hubara et al.,
"Binarized Neural Networks", 2016). The compiled ops give exactly what the
float computation on the +-1 values gives; `*_reference` compose the same
result from TensorFlow ops (unpack, then `tf.matmul` / `tf.nn.conv2d`), to
test the ops and as an explicit fallback.

These ops are for inference: they have no gradient. Train with
`BinaryDense` / `BinaryConv2D`, then `convert_for_inference`.
"""

import numbers

import tensorflow as tf

from keras_cnnpractice.custom_ops import _loader
from keras_cnnpractice.custom_ops._conv_args import conv_attrs

WORD_DTYPES = {32: tf.int32, 64: tf.int64}

for _name in ("Bitpack", "XnorMatmul", "XnorConv2D"):
    tf.no_gradient(f"KerasCnnPractice>{_name}")


def _word_dtype(word_bits):
    if word_bits not in WORD_DTYPES:
        raise ValueError("word_bits must be 32 or 64. Received: "
                         f"word_bits={word_bits!r}")
    return WORD_DTYPES[word_bits]


def bitpack(x, axis=-1, word_bits=32, name=None):
    """Packs the signs of `x` along `axis` into 32- or 64-bit words.

    Args:
        x: float32, float16 or bfloat16 tensor (other floats are cast to
            float32).
        axis: the axis to pack; it becomes `ceil(size / word_bits)` words
            long and moves to the end of the shape.
        word_bits: 32 (int32 words) or 64 (int64 words).
        name: optional op name.

    Returns:
        The packed int32/int64 tensor, with the packed axis last.
    """
    dtype = _word_dtype(word_bits)
    x = tf.convert_to_tensor(x)
    rank = x.shape.rank
    # (Rank 0 and unknown ranks are the op's to refuse.)
    if not isinstance(axis, numbers.Integral) or (
            rank and not -rank <= axis < rank):
        raise ValueError(f"bitpack: axis must be an int in [-{rank}, {rank}) "
                         f"for a rank-{rank} input. Received: axis={axis!r}")
    if x.dtype not in (tf.float32, tf.float16, tf.bfloat16):
        x = tf.cast(x, tf.float32)
    if axis not in (-1, x.shape.rank - 1):
        x = tf.experimental.numpy.moveaxis(x, axis, -1)
    lib = _loader.load_op_library()
    return lib.keras_cnn_practice_bitpack(x, out_type=dtype, name=name)


def pack_dense_kernel(kernel, word_bits=32):
    """A Dense kernel `[in, units]` packed as `xnor_matmul`'s `b`:
    `[units, ceil(in / word_bits)]`."""
    return bitpack(kernel, axis=0, word_bits=word_bits)


def pack_conv_kernel(kernel, word_bits=32):
    """A Conv2D kernel `[kh, kw, in, out]` packed as `xnor_conv2d`'s filter:
    `[out, kh, kw, ceil(in / word_bits)]`."""
    return bitpack(tf.transpose(kernel, [3, 0, 1, 2]), word_bits=word_bits)


def clear_bits_past(packed, length):
    """`packed` with every bit past `length` in its last axis cleared.

    `bitpack` leaves those bits 0; operands packed elsewhere may not, and
    the XOR-popcount products would count them. int32/int64 words only
    (anything else is passed through for the op to refuse).
    """
    packed = tf.convert_to_tensor(packed)
    if (packed.dtype not in (tf.int32, tf.int64)
            or not isinstance(length, numbers.Integral)):
        return packed
    bits = packed.dtype.size * 8
    tail = length % bits
    if tail == 0:
        return packed
    words = tf.shape(packed)[-1]
    # -1 (all bits) for every word but the last, which keeps `tail` bits.
    mask = tf.where(tf.range(words) < words - 1,
                    tf.constant(-1, packed.dtype),
                    tf.constant((1 << tail) - 1, packed.dtype))
    return tf.bitwise.bitwise_and(packed, mask)


def xnor_matmul(a, b, depth, name=None):
    """`sign(A) @ sign(B)^T` from packed rows, as float32.

    Args:
        a: `[m, words]` packed rows (`bitpack(A)`).
        b: `[n, words]` packed rows of the same dtype (`bitpack(B)`, or
            `pack_dense_kernel(kernel)` for a Dense kernel).
        depth: the real row length before packing; bits past it in the
            last word are ignored (cleared by `clear_bits_past`).
        name: optional op name.

    Returns:
        `[m, n]` float32, each entry an integer in [-depth, depth].

    Raises:
        tf.errors.InvalidArgumentError: ranks, word counts or depth that do
            not agree.
    """
    lib = _loader.load_op_library()
    return lib.keras_cnn_practice_xnor_matmul(
        clear_bits_past(a, depth), clear_bits_past(b, depth), depth=depth,
        name=name)


def xnor_conv2d(x, filters, channels, strides=1, padding="SAME",
                dilations=1, data_format="NHWC", name=None):
    """`tf.nn.conv2d(sign(x), sign(w))` from packed operands, as float32.

    Zero padding is honoured exactly: taps outside the image contribute 0,
    as they do to the float convolution.

    Args:
        x: `[batch, height, width, words]` packed input (`bitpack(images)`).
        filters: `[out_channels, kh, kw, words]` packed filter of the same
            dtype (`pack_conv_kernel(kernel)`).
        channels: the real number of input channels before packing; bits
            past it in each pixel's last word are ignored.
        strides, dilations: int or pair.
        padding: `"SAME"` or `"VALID"` (case-insensitive).
        data_format: only `"NHWC"`.
        name: optional op name.

    Returns:
        `[batch, out_height, out_width, out_channels]` float32.

    Raises:
        tf.errors.InvalidArgumentError: NCHW, bad strides or dilations,
            ranks or word counts that do not agree, a VALID kernel larger
            than the input.
    """
    lib = _loader.load_op_library()
    return lib.keras_cnn_practice_xnor_conv2d(
        clear_bits_past(x, channels), clear_bits_past(filters, channels),
        channels=channels, data_format=data_format, name=name,
        **conv_attrs(strides, padding, dilations))


def unpack_signs(packed, depth):
    """The +-1 float32 values packed in the last axis of `packed`."""
    packed = tf.convert_to_tensor(packed)
    bits = packed.dtype.size * 8
    shifts = tf.range(bits, dtype=packed.dtype)
    bit = tf.bitwise.bitwise_and(
        tf.bitwise.right_shift(packed[..., None], shifts), 1)
    shape = tf.concat([tf.shape(packed)[:-1], [-1]], 0)
    signs = 1.0 - 2.0 * tf.cast(tf.reshape(bit, shape), tf.float32)
    return signs[..., :depth]


def xnor_matmul_reference(a, b, depth):
    """`xnor_matmul` from TensorFlow ops (unpack, then `tf.matmul`)."""
    return tf.matmul(unpack_signs(a, depth), unpack_signs(b, depth),
                     transpose_b=True)


def xnor_conv2d_reference(x, filters, channels, strides=1, padding="SAME",
                          dilations=1):
    """`xnor_conv2d` from TensorFlow ops (unpack, then `tf.nn.conv2d`)."""
    kernel = tf.transpose(unpack_signs(filters, channels), [1, 2, 3, 0])
    return tf.nn.conv2d(unpack_signs(x, channels), kernel,
                        **conv_attrs(strides, padding, dilations))

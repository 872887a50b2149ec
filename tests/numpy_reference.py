"""Independent numpy references used by the tests (no project code)."""

import numpy as np

_M0, _M1 = np.uint64(0xD2511F53), np.uint64(0xCD9E8D57)
_W0, _W1 = 0x9E3779B9, 0xBB67AE85
_MASK = np.uint64(0xFFFFFFFF)


def philox4x32_10(counters, key):
    """Philox4x32-10 (Salmon et al. 2011) on an (n, 4) uint32 counter array."""
    c = [counters[:, i].astype(np.uint64) for i in range(4)]
    k0, k1 = int(key[0]), int(key[1])
    for _ in range(10):
        p0, p1 = _M0 * c[0], _M1 * c[2]
        c = [(p1 >> np.uint64(32)) ^ c[1] ^ np.uint64(k0), p1 & _MASK,
             (p0 >> np.uint64(32)) ^ c[3] ^ np.uint64(k1), p0 & _MASK]
        k0, k1 = (k0 + _W0) & 0xFFFFFFFF, (k1 + _W1) & 0xFFFFFFFF
    return np.stack(c, axis=1).astype(np.uint32)


def uniforms(n, seed0, seed1):
    """The uniform in [0, 1) that element i of a flat tensor draws."""
    groups = np.arange((n + 3) // 4, dtype=np.uint64)
    s0, s1 = np.uint64(seed0 % 2**64), np.uint64(seed1 % 2**64)
    counters = np.stack([groups & _MASK, groups >> np.uint64(32),
                         np.full_like(groups, s1 & _MASK),
                         np.full_like(groups, s1 >> np.uint64(32))], axis=1)
    bits = philox4x32_10(counters, (int(s0 & _MASK), int(s0 >> np.uint64(32))))
    return ((bits.reshape(-1)[:n] >> 8).astype(np.float64) * 2.0**-24)


def fixed_point(x, word_bits, frac_bits, rounding, u=None):
    """Fixed-point quantization in float64: floor + (u < remainder), or rint."""
    v = np.asarray(x, np.float64) * 2.0**frac_bits
    if rounding == "nearest":
        q = np.round(v)  # half to even
    else:
        with np.errstate(invalid="ignore"):
            f = np.floor(v)
            q = np.where(u.reshape(v.shape) < v - f, f + 1, f)
    lo, hi = -(2.0 ** (word_bits - 1)), 2.0 ** (word_bits - 1) - 1
    q = np.clip(q, lo, hi)
    return np.where(np.isnan(v), np.nan, q * 2.0**-frac_bits)


WORD_DTYPES = {32: np.dtype("<u4"), 64: np.dtype("<u8")}


def signs(x):
    """+1 where x >= 0, else -1 (negative and NaN), as float64."""
    return np.where(x >= 0, 1.0, -1.0)


def bitpack(x, word_bits):
    """[outer, depth] values -> [outer, ceil(depth / word_bits)] words."""
    outer, depth = x.shape
    words = -(-depth // word_bits)
    negative = np.zeros((outer, words * word_bits), dtype=bool)
    negative[:, :depth] = ~(x >= 0)
    # Little bit order: element 8k + i is bit i of byte k; read back as
    # little-endian words, element w * word_bits + j is bit j of word w.
    packed = np.packbits(negative, axis=-1, bitorder="little")
    return packed.view(WORD_DTYPES[word_bits])


def conv_output_size_and_pad(size, kernel, stride, dilation, padding):
    """TF's output size and leading pad along one spatial axis."""
    span = (kernel - 1) * dilation + 1
    if padding == "VALID":
        return -(-(size - span + 1) // stride), 0
    out = -(-size // stride)
    pad_total = max((out - 1) * stride + span - size, 0)
    return out, pad_total // 2


def _padded_geometry(x_shape, w_shape, strides, dilations, padding):
    """Output size, leading pads and the zero padding of a direct conv."""
    _, in_h, in_w, _ = x_shape
    kh, kw = w_shape[:2]
    out_h, pad_top = conv_output_size_and_pad(in_h, kh, strides[0],
                                              dilations[0], padding)
    out_w, pad_left = conv_output_size_and_pad(in_w, kw, strides[1],
                                               dilations[1], padding)
    # Enough zero padding after the image for every tap the output reads.
    need_h = (out_h - 1) * strides[0] + (kh - 1) * dilations[0] + 1
    need_w = (out_w - 1) * strides[1] + (kw - 1) * dilations[1] + 1
    pads = [(0, 0), (pad_top, max(need_h - pad_top - in_h, 0)),
            (pad_left, max(need_w - pad_left - in_w, 0)), (0, 0)]
    return (out_h, out_w), pads


def _taps(w_shape, strides, dilations, out_size):
    """(i, j, index) for each kernel tap: index selects the padded input
    pixels that tap reads for every output pixel."""
    kh, kw = w_shape[:2]
    for i in range(kh):
        for j in range(kw):
            rows = i * dilations[0] + strides[0] * np.arange(out_size[0])
            cols = j * dilations[1] + strides[1] * np.arange(out_size[1])
            yield i, j, (slice(None), rows[:, None], cols[None, :])


def conv2d(x, w, strides=(1, 1), dilations=(1, 1), padding="SAME"):
    """Direct float64 convolution as `tf.nn.conv2d` computes it (zero
    padding, TF's SAME split): x [batch, h, w, in], w [kh, kw, in, out]."""
    x, w = np.asarray(x, np.float64), np.asarray(w, np.float64)
    size, pads = _padded_geometry(x.shape, w.shape, strides, dilations,
                                  padding)
    xp = np.pad(x, pads)
    out = np.zeros((x.shape[0], *size, w.shape[3]))
    for i, j, index in _taps(w.shape, strides, dilations, size):
        out += xp[index] @ w[i, j]
    return out


def conv2d_gradients(x, w, dy, strides=(1, 1), dilations=(1, 1),
                     padding="SAME"):
    """(d input, d filter) of `sum(conv2d(x, w) * dy)`, in float64."""
    x, w = np.asarray(x, np.float64), np.asarray(w, np.float64)
    dy = np.asarray(dy, np.float64)
    size, pads = _padded_geometry(x.shape, w.shape, strides, dilations,
                                  padding)
    xp = np.pad(x, pads)
    dxp, dw = np.zeros_like(xp), np.zeros_like(w)
    for i, j, index in _taps(w.shape, strides, dilations, size):
        dxp[index] += dy @ w[i, j].T
        dw[i, j] = np.einsum("nhwc,nhwo->co", xp[index], dy)
    h, wd = x.shape[1:3]
    dx = dxp[:, pads[1][0]:pads[1][0] + h, pads[2][0]:pads[2][0] + wd]
    return dx, dw


def sign_conv2d(x, f, strides, dilations, padding):
    """Direct float64 convolution of the signs, zero padded, NHWC output.

    x: [batch, in_h, in_w, channels]; f: [out_channels, kh, kw, channels].
    Returns (output, (out_h, out_w), (pad_top, pad_left)).
    """
    kernel = signs(f).transpose(1, 2, 3, 0)
    size, pads = _padded_geometry(x.shape, kernel.shape, strides, dilations,
                                  padding)
    out = conv2d(signs(x), kernel, strides, dilations, padding)
    return out, size, (pads[1][0], pads[2][0])


def values_with_zeros_and_nans(rng, shape):
    """Uniform float32 values in [-1, 1) with exact zeros, -0.0 and NaNs
    sprinkled: the sign cases every bit-packing test must cover."""
    x = rng.uniform(-1, 1, shape).astype(np.float32)
    flat = x.reshape(-1)
    flat[rng.integers(0, flat.size, flat.size // 10 + 1)] = 0.0
    flat[rng.integers(0, flat.size, flat.size // 10 + 1)] = -0.0
    flat[rng.integers(0, flat.size, flat.size // 20 + 1)] = np.nan
    return x

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

"""The op library is built per instruction-set level and the loader picks
the level from the running CPU's flags, never from the build machine:
every level this CPU supports computes the same results (checked against
numpy and stock TensorFlow ops) when forced with KCP_ISA."""

import os
import subprocess
import sys
import textwrap

import pytest

from keras_cnnpractice.custom_ops import _loader

AVX512_CPU = _loader.ISA_LEVELS["avx512"]  # a Zen 4 / Ice Lake kind
AVX2_CPU = _loader.ISA_LEVELS["avx2"]      # a Zen 3 / Haswell kind


def test_levels_follow_the_cpu_flags():
    assert _loader.supported_levels(AVX512_CPU) == ["avx512", "avx2",
                                                    "generic"]
    assert _loader.supported_levels(AVX2_CPU) == ["avx2", "generic"]
    # AVX-512 without VPOPCNTDQ (Skylake-X) stays on the AVX2 build.
    assert _loader.supported_levels(
        AVX512_CPU - {"avx512_vpopcntdq"}) == ["avx2", "generic"]
    assert _loader.supported_levels(frozenset()) == ["generic"]


def test_forcing_a_level():
    assert _loader.chosen_level(AVX512_CPU, forced="avx2") == "avx2"
    with pytest.raises(_loader.OpLibraryError, match="avx512_vpopcntdq"):
        _loader.chosen_level(AVX2_CPU, forced="avx512")
    with pytest.raises(_loader.OpLibraryError, match="KCP_ISA=.sse9"):
        _loader.chosen_level(AVX2_CPU, forced="sse9")


CHECK = textwrap.dedent("""
    import numpy as np
    import tensorflow as tf
    from keras_cnnpractice.custom_ops import (
        _loader, affine_resample, bitpack, im2col_conv2d, stochastic_round,
        winograd_conv2d, xnor_conv2d, xnor_matmul)
    level = _loader.build_info()["isa"]
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 13, 11, 16)).astype("float32")
    w = rng.normal(size=(3, 3, 16, 8)).astype("float32")
    want = tf.nn.conv2d(x.astype("float64"), w.astype("float64"), 1,
                        "SAME").numpy()
    scale = np.abs(want).max()
    for tile in (2, 4, 6):
        got = winograd_conv2d(x, w, tile=tile).numpy()
        assert np.abs(got - want).max() <= 1e-4 * scale, tile
    # Channels enough for the blocked path (the above is fused).
    xb = rng.normal(size=(1, 6, 10, 512)).astype("float32")
    wb = rng.normal(size=(3, 3, 512, 300)).astype("float32")
    want_b = tf.nn.conv2d(xb.astype("float64"), wb.astype("float64"), 1,
                          "SAME").numpy()
    for tile in (2, 4, 6):
        got = winograd_conv2d(xb, wb, tile=tile).numpy()
        assert (np.abs(got - want_b).max()
                <= 1e-4 * np.abs(want_b).max()), tile
    assert np.abs(im2col_conv2d(x, w).numpy() - want).max() <= 1e-5 * scale
    # Its gradients: the GEMM with a transposed B (input gradient) and a
    # transposed A (filter gradient).
    dy = rng.normal(size=want.shape)
    def gradients(conv, dtype):
        xt, wt = tf.constant(x, dtype), tf.constant(w, dtype)
        with tf.GradientTape() as tape:
            tape.watch([xt, wt])
            y = conv(xt, wt)
        return tape.gradient(y, [xt, wt], output_gradients=tf.cast(dy, dtype))
    got = gradients(im2col_conv2d, tf.float32)
    ref = gradients(lambda a, b: tf.nn.conv2d(a, b, 1, "SAME"), tf.float64)
    for g, r in zip(got, ref):
        assert (np.abs(g.numpy() - r.numpy()).max()
                <= 1e-5 * np.abs(r.numpy()).max())
    a = np.sign(rng.normal(size=(9, 100))).astype("float32")
    b = np.sign(rng.normal(size=(7, 100))).astype("float32")
    assert (xnor_matmul(bitpack(a), bitpack(b), 100).numpy()
            == a @ b.T).all()
    # Several column chunks and a partial last panel.
    a = np.sign(rng.normal(size=(3, 512))).astype("float32")
    b = np.sign(rng.normal(size=(300, 512))).astype("float32")
    assert (xnor_matmul(bitpack(a), bitpack(b), 512).numpy()
            == a @ b.T).all()
    # XNOR convolution, SAME padding (taps in the padding corrected after
    # the product), 2 words per pixel, 3 column chunks.
    xs = np.sign(rng.normal(size=(2, 5, 6, 70))).astype("float32")
    ws = np.sign(rng.normal(size=(300, 3, 3, 70))).astype("float32")
    want_s = tf.nn.conv2d(xs.astype("float64"),
                          ws.astype("float64").transpose(1, 2, 3, 0), 1,
                          "SAME").numpy()
    got_s = xnor_conv2d(bitpack(xs, word_bits=64), bitpack(ws, word_bits=64),
                        70, 1, "SAME").numpy()
    assert (got_s == want_s).all()
    v = rng.normal(size=1000).astype("float32") * 3
    q = stochastic_round(v, 16, 8, rounding="nearest").numpy()
    assert (q == np.round(v * 256) / 256).all()
    images = rng.integers(0, 256, (3, 20, 24, 3)).astype("uint8")
    m = np.tile(np.array([[0.7, 0.2, 3.0], [-0.1, 0.8, 2.0], [0, 0, 1]],
                         "float32"), (3, 1, 1))
    stock = tf.raw_ops.ImageProjectiveTransformV3(
        images=tf.cast(images, tf.float32), transforms=m.reshape(3, 9)[:, :8],
        output_shape=[16, 18], fill_value=0.0, interpolation="BILINEAR",
        fill_mode="REFLECT").numpy()
    ours = affine_resample(images, m, 16, 18, "bilinear", "reflect").numpy()
    assert np.abs(ours - stock).max() < 2e-3
    print("level", level, "ok")
""")


def test_every_supported_level_computes_the_same():
    levels = [lv for lv in _loader.supported_levels()
              if _loader.library_path(lv).is_file()]
    assert "generic" in levels
    # The build makes every level; here, each one this CPU can run.
    assert set(levels) == set(_loader.supported_levels()), (
        "rebuild: some levels this CPU supports were not built")
    # The best level is what every other test runs in-process; the lower
    # ones each run the same checks in a child process.
    best = _loader.chosen_level(forced="")
    assert best == levels[0]
    running = {level: subprocess.Popen(
        [sys.executable, "-c", CHECK], stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
        env=dict(os.environ, KCP_ISA=level)) for level in levels[1:]}
    for level, process in running.items():
        out, err = process.communicate(timeout=300)
        assert process.returncode == 0, (level, err[-2000:])
        assert f"level {level} ok" in out

"""Augmentation throughput: does one fused affine resample beat Keras's
chain of one-resample-per-layer augmentation layers, and what does a full
policy cost per batch?

Measured in one run, on the same batch of --batch_size random
--image_size x --image_size x 3 float32 images (pixels in [0, 255]), each
method inside a `tf.function` called with training=True:

  * `RandomAffine(rotation, shear, scale, translation, flip=True)`: flip,
    zoom, shear, rotation and translation composed into one 3x3 matrix per
    image and applied with a single `ImageProjectiveTransformV3` resample;
  * the equivalent Keras 3 chain, `RandomFlip("horizontal")`, `RandomZoom`,
    `RandomShear`, `RandomRotation`, `RandomTranslation` with the same
    magnitudes (same fill mode, "reflect", and bilinear interpolation), which
    resamples the whole batch once per geometric layer (four times);
  * the full "natural" policy (`augmentation_policy("natural")`: ScaleAugment
    + horizontal flip + RandomColorJitter + PCALighting);
  * for reference, `RandomResizedCrop`, `LensDistortion()` and
    `PCALighting` (AlexNet's ImageNet components, scaled to [0, 255]) alone;
  * when `albumentations` is importable (it is not a requirement of this
    project), its per-image CPU pipeline, `A.Compose([HorizontalFlip,
    Affine(rotate, shear, scale, translate_percent)])` applied image by image
    to the batch as numpy arrays (one `cv2.warpAffine` per image); otherwise
    the results say "not installed".

Each call is synchronised by fetching one output element to the host (so the
numbers stay honest on a GPU too, where a call returns before its kernels
finish); the median over --repeats calls is kept. Reported: ms per batch,
images/s, and the speed ratio against the Keras chain (chain ms / method ms,
above 1 = faster than the chain).

Goal: the fused `RandomAffine` at >= 3x the throughput of the Keras chain
(it does one resample where the chain does four, plus the flip's copy).

    python benchmarks/augment.py [--batch_size 32] [--image_size 224]
        [--repeats 15] [--rotation 0.05 --shear 0.1 --scale 0.1
        --translation 0.1]

Writes benchmarks/results/augment.{json,md} (or NAME.* with --name).
"""

import math
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
# albumentations (when installed) asks PyPI for a newer version on import.
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from absl import app  # noqa: E402
from absl import flags  # noqa: E402

import _common as common  # noqa: E402

GOAL_RATIO = 3.0
FUSED = "RandomAffine (fused, 1 resample)"
CHAIN = "Keras chain (flip+zoom+shear+rotation+translation)"

flags.DEFINE_integer("batch_size", 32, "Images per batch.", lower_bound=1)
flags.DEFINE_integer("image_size", 224, "Image height and width.",
                     lower_bound=16)
flags.DEFINE_integer("repeats", 15, "Timed calls per method (median kept).",
                     lower_bound=1)
flags.DEFINE_integer("warmup", 3, "Untimed calls per method before timing "
                     "(after the first call, which traces and is checked).",
                     lower_bound=0)
flags.DEFINE_float("rotation", 0.05, "Rotation range, fraction of a turn "
                   "(0.05 = +-18 degrees).", lower_bound=0.0, upper_bound=0.5)
flags.DEFINE_float("shear", 0.1, "Horizontal shear coefficient range.",
                   lower_bound=0.0, upper_bound=1.0)
flags.DEFINE_float("scale", 0.1, "Zoom range (sampling step 1 +- scale).",
                   lower_bound=0.0, upper_bound=0.9)
flags.DEFINE_float("translation", 0.1, "Shift range, fraction of the size.",
                   lower_bound=0.0, upper_bound=1.0)
flags.DEFINE_integer("seed", 0, "Seed of the images and of the layers.")
flags.DEFINE_string("name", "augment", "Results file name (results/NAME.*).")
FLAGS = flags.FLAGS


def _keras_methods(size):
    """{name: function of a batch} for every TensorFlow/Keras method."""
    import keras

    from keras_cnnpractice.data import augmentation_policy
    from keras_cnnpractice.layers import LensDistortion
    from keras_cnnpractice.layers import PCALighting
    from keras_cnnpractice.layers import RandomAffine
    from keras_cnnpractice.layers import RandomResizedCrop
    from keras_cnnpractice.layers.pca_lighting import IMAGENET_EIGENVALUES
    from keras_cnnpractice.layers.pca_lighting import IMAGENET_EIGENVECTORS

    seed = FLAGS.seed
    fused = RandomAffine(rotation=FLAGS.rotation, shear=FLAGS.shear,
                         scale=FLAGS.scale, translation=FLAGS.translation,
                         flip=True, fill_mode="reflect",
                         interpolation="bilinear", seed=seed)
    # In RandomAffine's order (flip, zoom, shear, rotate, translate); each
    # geometric layer resamples the batch once.
    chain = [
        keras.layers.RandomFlip("horizontal", seed=seed),
        keras.layers.RandomZoom(FLAGS.scale, fill_mode="reflect",
                                interpolation="bilinear", seed=seed),
        keras.layers.RandomShear(x_factor=FLAGS.shear, y_factor=0.0,
                                 fill_mode="reflect",
                                 interpolation="bilinear", seed=seed),
        keras.layers.RandomRotation(FLAGS.rotation, fill_mode="reflect",
                                    interpolation="bilinear", seed=seed),
        keras.layers.RandomTranslation(FLAGS.translation, FLAGS.translation,
                                       fill_mode="reflect",
                                       interpolation="bilinear", seed=seed),
    ]

    def run_chain(x):
        for layer in chain:
            x = layer(x, training=True)
        return x

    layers = {
        "natural policy (ScaleAugment+flip+ColorJitter+PCALighting)":
            augmentation_policy("natural", seed=seed,
                                input_shape=(size, size, 3)),
        "RandomResizedCrop": RandomResizedCrop(size, size, seed=seed),
        "LensDistortion": LensDistortion(seed=seed),
        "PCALighting": PCALighting(
            0.1, [v * 255.0 for v in IMAGENET_EIGENVALUES],
            IMAGENET_EIGENVECTORS, seed=seed),
    }
    methods = {FUSED: lambda x: fused(x, training=True), CHAIN: run_chain}
    for name, layer in layers.items():
        methods[name] = lambda x, layer=layer: layer(x, training=True)
    return methods


def _albumentations_method():
    """(version, function of a numpy batch), or (None, None)."""
    try:
        import albumentations as A
        import cv2
    except ImportError:
        return None, None
    import numpy as np

    degrees = FLAGS.rotation * 360.0
    shear_degrees = math.degrees(math.atan(FLAGS.shear))
    t = FLAGS.translation
    pipeline = A.Compose([
        A.HorizontalFlip(p=0.5),
        # Keras's zoom samples with step 1 + z, z in [-scale, scale]; in
        # albumentations' terms the content is scaled by 1 / (1 + z).
        A.Affine(rotate=(-degrees, degrees),
                 shear={"x": (-shear_degrees, shear_degrees), "y": (0, 0)},
                 scale=(1.0 / (1.0 + FLAGS.scale), 1.0 / (1.0 - FLAGS.scale)),
                 translate_percent={"x": (-t, t), "y": (-t, t)},
                 interpolation=cv2.INTER_LINEAR,
                 border_mode=cv2.BORDER_REFLECT, p=1.0),
    ], seed=FLAGS.seed)

    def run(batch):
        return np.stack([pipeline(image=image)["image"] for image in batch])

    return A.__version__, run


def _check(name, out, shape):
    import numpy as np
    out = np.asarray(out)
    if out.shape != tuple(shape) or not np.all(np.isfinite(out)):
        raise SystemExit(f"augment.py: {name} returned shape {out.shape} "
                         f"(expected {tuple(shape)}) or non-finite values; "
                         "not timing it")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    import keras
    import numpy as np
    import tensorflow as tf

    size, batch = FLAGS.image_size, FLAGS.batch_size
    shape = (batch, size, size, 3)
    x = tf.random.stateless_uniform(shape, seed=[FLAGS.seed, 1],
                                    maxval=255.0, dtype=tf.float32)
    seconds, notes = {}, {}
    for name, method in _keras_methods(size).items():
        graph = tf.function(lambda m=method: m(x))
        _check(name, graph(), shape)  # traces, and checks the output

        def call(graph=graph):
            return graph()[0, 0, 0, 0].numpy()  # waits for the whole batch

        seconds[name] = common.median_seconds(call, repeats=FLAGS.repeats,
                                              warmup=FLAGS.warmup)
        print(f"{name}: {seconds[name] * 1e3:.2f} ms", flush=True)

    album_name = "albumentations per-image CPU (HorizontalFlip+Affine)"
    album_version, album = _albumentations_method()
    if album is None:
        notes[album_name] = "not installed"
    else:
        x_np = x.numpy()
        _check(album_name, album(x_np), shape)
        seconds[album_name] = common.median_seconds(
            lambda: album(x_np), repeats=FLAGS.repeats, warmup=FLAGS.warmup)
        print(f"{album_name}: {seconds[album_name] * 1e3:.2f} ms", flush=True)

    chain = seconds[CHAIN]
    results, rows = [], []
    for name, sec in seconds.items():
        entry = {"method": name, "ms_per_batch": sec * 1e3,
                 "images_per_s": batch / sec, "ratio_vs_keras_chain":
                     chain / sec}
        results.append(entry)
        rows.append([name, f"{sec * 1e3:.2f}", f"{batch / sec:.1f}",
                     f"{chain / sec:.2f}x"])
    for name, note in notes.items():
        results.append({"method": name, "status": note})
        rows.append([name, note, "-", "-"])
    ratio = chain / seconds[FUSED]
    print(f"\nfused RandomAffine vs Keras chain: {ratio:.2f}x "
          f"(goal >= {GOAL_RATIO:g}x: {'met' if ratio >= GOAL_RATIO else 'NOT met'})")
    payload = {
        "benchmark": "augment", "batch_size": batch,
        "image_shape": [size, size, 3], "dtype": "float32",
        "repeats": FLAGS.repeats, "warmup": FLAGS.warmup,
        "magnitudes": {"rotation": FLAGS.rotation, "shear": FLAGS.shear,
                       "scale": FLAGS.scale,
                       "translation": FLAGS.translation},
        "fused_vs_chain_ratio": ratio, "goal_ratio": GOAL_RATIO,
        "goal_met": ratio >= GOAL_RATIO,
        "versions": {"tensorflow": tf.__version__,
                     "keras": keras.__version__, "numpy": np.__version__,
                     "albumentations": album_version or "not installed"},
        "devices": [d.name for d in tf.config.list_logical_devices()],
        "results": results,
    }
    common.write_results(
        FLAGS.name, payload,
        ["method", "ms per batch", "images/s", "ratio vs Keras chain"], rows,
        f"Augmentation throughput ({batch} x {size}x{size}x3 float32; fused "
        f"vs chain {ratio:.2f}x, goal >= {GOAL_RATIO:g}x)")


if __name__ == "__main__":
    app.run(main)

"""Augmentation at the speed of the hardware: images/s of each augmentation
method on the same CPU, every method using all the cores, against
albumentations.

The question: with --source_size (256) x 256 uint8 source images turned into
--crop (224) x 224 float32 training images, batch --batch_size (32), how
many images per second does each method deliver, and how does that compare
with albumentations doing the same ops per image in one worker process per
core (the usual PyTorch `DataLoader` setup)?

Every TensorFlow method runs as the same `tf.data` pipeline over --images
(512) random uint8 images held in memory:

    Dataset.from_tensor_slices(images).repeat().batch(32)
        .map(fn, num_parallel_calls=AUTOTUNE).prefetch(AUTOTUNE)

where `fn` is one of:

  * `natural` (the goal): `FusedAugment([ScaleCrop((256, 480), 224),
    Flip("horizontal"), Brightness(0.2), Contrast(0.2),
    Saturation((0.8/1.8, 1.2/2.2)), Lighting(0.1, ImageNet PCA)],
    value_range=(0, 255), fill_mode="nearest")`: the `natural` policy of
    `keras_cnnpractice.data.augmentation_policy`, with the crop set to 224
    from 256 sources (the policy itself crops to the image size). It reads
    uint8 and writes float32: one resample and one color matrix per image,
    by the compiled CPU op (`implementation="op"`, the `tf.data` path that
    `train.py` uses).
  * `natural_xla`: the same with `implementation="xla"` (TensorFlow ops in
    one XLA computation: the in-model path, here run in the map).
  * `inception`: the same with `ResizedCrop(224, 224)` in place of
    `ScaleCrop`: exactly the op set albumentations runs below.
  * `chain`: the unfused chain, one layer per op as the policy used to be
    composed: cast to float32, `ScaleAugment((256, 480), 224)`,
    `keras.layers.RandomFlip("horizontal")`, `keras.layers.RandomColorJitter
    (brightness 0.2, contrast 0.2, saturation (0.8/1.8, 1.2/2.2))`,
    `PCALighting` (ScaleAugment is itself fused: the chain of layers, and
    Keras's color jitter, is the point).
  * each fused layer alone, from uint8, `implementation="op"`:
    `RandomResizedCrop(224, 224)`,
    `ScaleAugment((256, 480), 224)`, `RandomAffine(rotation=0.05, shear=0.1,
    scale=0.1, translation=0.1, flip=True)` (256x256 out), and a
    `FusedAugment` of the four color steps only (256x256 out).
  * `cast`: the float32 cast alone (256x256 out): what the pipeline costs
    without any augmentation.

albumentations (installed for this benchmark only, never a requirement of
the project: `pip install albumentations`; without it the results say "not
installed"): `A.Compose([RandomResizedCrop(size=(224, 224)),
HorizontalFlip(), ColorJitter(brightness=0.2, contrast=0.2, saturation=0.2,
hue=0, p=1), FancyPCA(alpha=0.1, p=1), ToFloat(max_value=1)])` applied image
by image (uint8 in, float32 0..255 out, as the fused layers) in a
`multiprocessing` pool of --album_workers (default: one per core) spawned
processes, each with `cv2.setNumThreads(1)` and one BLAS thread. As in a
`DataLoader`, the source images and the output batches live in shared
memory (files in /dev/shm): the main process hands each worker a chunk of
a batch (--album_chunk images, default batch / workers) to write into a
ring of batch slots, keeping --album_prefetch batches per worker in flight,
and takes finished batches in order; no image is pickled. A reference
row runs the same without `FancyPCA`, which computes the principal
components of each image (the fused `Lighting` uses fixed ImageNet ones)
and is most of albumentations' time per image: the goal is stated against
the full pipeline, the reference shows how much of the ratio that op is.

Timing, the same for all of them: --warmup batches are taken untimed (the
first ones trace and compile), then --repeats windows of --batches batches
each; a method's images/s is the median over the windows (ms per batch is
batch / that). Each row also gives the cores kept busy during the timed
windows (process CPU seconds, pool workers included, over wall seconds),
and the ratio of its images/s to albumentations'.

The model step (--model_steps > 0): a small CNN (uint8 256x256x3 input ->
the `natural` FusedAugment with `implementation="xla"` -> Rescaling -> 3
Conv2D/pooling -> Dense(10)),
compiled with `jit_compile=True` and again with `jit_compile=False`, trained
with `train_on_batch` on one fixed batch (the augmentation runs inside the
model, in the step); ms per step and images/s, median over --repeats
windows of --model_steps steps after --model_warmup steps. A reference row
runs the same model with a central crop in place of the augmentation
(`jit_compile=True`), so the augmentation's share of the step shows.

Goal: the fused `natural` policy at >= 3x albumentations' images/s on the
same machine.

    python benchmarks/augment.py [--batch_size 32 --source_size 256
        --crop 224 --images 512 --batches 40 --repeats 5 --warmup 10
        --album_workers N --model_steps 20 --methods natural,albumentations]
    python benchmarks/augment.py --quick   # smoke run, under a minute

Writes benchmarks/results/augment.{json,md} (or NAME.* with --name), with
the CPU model and its AVX-512 flags, the library versions, the command line
and the machine's load average before and after (the numbers are only
worth as much as the machine was idle).
"""

import collections
import gc
import os
import pathlib
import shutil
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
# albumentations asks PyPI for a newer version on import; not here.
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from absl import app  # noqa: E402
from absl import flags  # noqa: E402

import _common as common  # noqa: E402

GOAL_RATIO = 3.0
GOAL_METHOD = "natural"
BASELINE = "albumentations"

# Short key -> row name, in the order they run and are reported.
METHODS = collections.OrderedDict([
    ("natural", "FusedAugment natural (ScaleCrop+flip+color+lighting), op"),
    ("natural_xla", "FusedAugment natural, XLA implementation"),
    ("inception", "FusedAugment inception (ResizedCrop+flip+color+lighting)"),
    ("chain", "unfused chain (cast, ScaleAugment, RandomFlip, "
              "RandomColorJitter, PCALighting)"),
    ("rrc", "RandomResizedCrop alone"),
    ("scale", "ScaleAugment alone"),
    ("affine", "RandomAffine alone (rotation+shear+scale+translation+flip)"),
    ("color", "FusedAugment color steps alone"),
    ("cast", "float32 cast only (no augmentation)"),
    ("albumentations", "albumentations per image, process pool"),
    ("album_nopca", "albumentations without FancyPCA (reference)"),
    ("model", "model step"),
])

_QUICK = {"images": 128, "batches": 4, "repeats": 2, "warmup": 3,
          "model_steps": 3, "model_warmup": 2}

flags.DEFINE_integer("batch_size", 32, "Images per batch.", lower_bound=1)
flags.DEFINE_integer("source_size", 256, "Height and width of the uint8 "
                     "source images.", lower_bound=32)
flags.DEFINE_integer("crop", 224, "Output height and width of the cropping "
                     "methods.", lower_bound=16)
flags.DEFINE_integer("images", 512, "Distinct source images (repeated).",
                     lower_bound=1)
flags.DEFINE_integer("batches", 40, "Batches per timed window.",
                     lower_bound=1)
flags.DEFINE_integer("repeats", 5, "Timed windows per method (median "
                     "kept).", lower_bound=1)
flags.DEFINE_integer("warmup", 10, "Untimed batches per method first (they "
                     "include tracing and compiling).", lower_bound=1)
flags.DEFINE_integer("album_workers", os.cpu_count() or 1,
                     "albumentations worker processes (default: one per "
                     "core).", lower_bound=1)
flags.DEFINE_integer("album_chunk", 0, "Images per worker task (0: batch / "
                     "workers, rounded up).", lower_bound=0)
flags.DEFINE_integer("album_prefetch", 2, "Batches in flight per "
                     "albumentations worker (DataLoader's prefetch_factor).",
                     lower_bound=1)
flags.DEFINE_integer("model_steps", 20, "Train steps per timed window of the "
                     "model step (0: skip the model rows).", lower_bound=0)
flags.DEFINE_integer("model_warmup", 3, "Untimed train steps after the "
                     "first (compiling) one.", lower_bound=0)
flags.DEFINE_list("methods", list(METHODS), "Which methods to run, of: "
                  + ", ".join(METHODS) + f" ({BASELINE} and {GOAL_METHOD} "
                  "are needed for the ratios and the goal).")
flags.DEFINE_bool("quick", False, "Smoke run: small numbers (" + ", ".join(
    f"--{k} {v}" for k, v in _QUICK.items()) + ") unless given explicitly.")
flags.DEFINE_integer("seed", 0, "Seed of the images and of the layers.")
flags.DEFINE_string("name", "augment", "Results file name (results/NAME.*).")
FLAGS = flags.FLAGS


# ------------------------------------------------------------------ machine

def _load():
    return [round(x, 2) for x in os.getloadavg()]


def _cpu_flags():
    """The CPU's AVX-512 flags (and avx2, fma) from /proc/cpuinfo."""
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                have = line.split(":", 1)[1].split()
                return sorted(f for f in set(have) if f.startswith("avx512")
                              or f in ("avx2", "fma"))
    except OSError:
        pass
    return []


def _cpu_seconds(pids=()):
    """CPU seconds used so far by this process (all threads) and `pids`."""
    total = time.process_time()
    tick = os.sysconf("SC_CLK_TCK")
    for pid in pids:
        try:
            stat = pathlib.Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return total


# ------------------------------------------------------------------ timing

def _time_batches(next_batch, warmup, batches, repeats, batch_size,
                  pids=()):
    """images/s of `next_batch()` per window, and the cores kept busy."""
    for _ in range(warmup):
        next_batch()
    rates, busy = [], []
    for _ in range(repeats):
        cpu, start = _cpu_seconds(pids), time.perf_counter()
        for _ in range(batches):
            next_batch()
        wall = time.perf_counter() - start
        rates.append(batches * batch_size / wall)
        busy.append((_cpu_seconds(pids) - cpu) / wall)
    return {"images_per_s": statistics.median(rates),
            "window_images_per_s": rates,
            "cores_busy": statistics.median(busy)}


def _check(name, out, shape):
    import numpy as np
    out = np.asarray(out)
    if (out.shape != tuple(shape) or out.dtype != np.float32
            or not np.all(np.isfinite(out))):
        raise SystemExit(
            f"augment.py: {name} gave {out.dtype} {out.shape} (expected "
            f"float32 {tuple(shape)}) or non-finite values; not timing it")


# ------------------------------------------------------- TensorFlow methods

def _natural(geometric, seed, implementation="op"):
    """A FusedAugment of `geometric` and the natural policy's other steps."""
    from keras_cnnpractice.layers import FusedAugment
    from keras_cnnpractice.layers import augment_steps as steps
    return FusedAugment([geometric, steps.Flip("horizontal")]
                        + _color_steps(), value_range=(0, 255),
                        fill_mode="nearest", seed=seed,
                        implementation=implementation)


def _color_steps():
    from keras_cnnpractice.layers import augment_steps as steps
    from keras_cnnpractice.layers.pca_lighting import IMAGENET_EIGENVALUES
    from keras_cnnpractice.layers.pca_lighting import IMAGENET_EIGENVECTORS
    return [steps.Brightness(0.2), steps.Contrast(0.2),
            # Keras's saturation factor v is a multiplier v / (1 - v):
            # these bounds are multipliers 0.8 and 1.2.
            steps.Saturation((0.8 / 1.8, 1.2 / 2.2)),
            # The ImageNet components are for pixels in [0, 1].
            steps.Lighting(0.1, [v * 255.0 for v in IMAGENET_EIGENVALUES],
                           IMAGENET_EIGENVECTORS)]


def _tf_methods(keys):
    """{key: (function of a uint8 batch, output height/width)}."""
    import keras
    import tensorflow as tf

    from keras_cnnpractice.layers import FusedAugment
    from keras_cnnpractice.layers import PCALighting
    from keras_cnnpractice.layers import RandomAffine
    from keras_cnnpractice.layers import RandomResizedCrop
    from keras_cnnpractice.layers import ScaleAugment
    from keras_cnnpractice.layers import augment_steps as steps
    from keras_cnnpractice.layers.pca_lighting import IMAGENET_EIGENVALUES
    from keras_cnnpractice.layers.pca_lighting import IMAGENET_EIGENVECTORS

    seed, crop, size = FLAGS.seed, FLAGS.crop, FLAGS.source_size
    short_side = (round(crop * 256 / 224), round(crop * 480 / 224))

    def _chain(short_side, crop, seed):
        layers = [
            ScaleAugment(short_side, crop, seed=seed),
            keras.layers.RandomFlip("horizontal", seed=seed),
            keras.layers.RandomColorJitter(
                value_range=(0, 255), brightness_factor=0.2,
                contrast_factor=0.2, saturation_factor=(0.8 / 1.8, 1.2 / 2.2),
                seed=seed),
            PCALighting(0.1, [v * 255.0 for v in IMAGENET_EIGENVALUES],
                        IMAGENET_EIGENVECTORS, seed=seed),
        ]

        def run(x, training=True):
            x = tf.cast(x, tf.float32)
            for layer in layers:
                x = layer(x, training=training)
            return x
        return run

    makers = {
        "natural": lambda: (_natural(steps.ScaleCrop(short_side, crop),
                                     seed), crop),
        "natural_xla": lambda: (_natural(steps.ScaleCrop(short_side, crop),
                                         seed, "xla"), crop),
        "inception": lambda: (_natural(steps.ResizedCrop(crop, crop), seed),
                              crop),
        "chain": lambda: (_chain(short_side, crop, seed), crop),
        "rrc": lambda: (RandomResizedCrop(crop, crop, seed=seed,
                                          implementation="op"), crop),
        "scale": lambda: (ScaleAugment(short_side, crop, seed=seed,
                                       implementation="op"), crop),
        "affine": lambda: (RandomAffine(rotation=0.05, shear=0.1, scale=0.1,
                                        translation=0.1, flip=True,
                                        seed=seed, implementation="op"),
                           size),
        "color": lambda: (FusedAugment(_color_steps(), value_range=(0, 255),
                                       seed=seed, implementation="op"),
                          size),
        "cast": lambda: (lambda x, training=True: tf.cast(x, tf.float32),
                         size),
    }
    return {key: makers[key]() for key in keys if key in makers}


def _time_tf(name, fn, out_size, images):
    import tensorflow as tf
    batch = FLAGS.batch_size
    ds = (tf.data.Dataset.from_tensor_slices(images).repeat()
          .batch(batch, drop_remainder=True)
          .map(lambda x: fn(x, training=True),
               num_parallel_calls=tf.data.AUTOTUNE)
          .prefetch(tf.data.AUTOTUNE))
    it = iter(ds)
    _check(name, next(it), (batch, out_size, out_size, 3))
    result = _time_batches(lambda: next(it), FLAGS.warmup, FLAGS.batches,
                           FLAGS.repeats, batch)
    del it, ds
    gc.collect()
    return result


# ---------------------------------------------------------- albumentations

_WORKER = {}


def _album_pipeline(crop, seed, fancy_pca=True):
    """The albumentations counterpart of the `inception` policy."""
    import albumentations as A
    return A.Compose([
        A.RandomResizedCrop(size=(crop, crop)),
        A.HorizontalFlip(p=0.5),
        A.ColorJitter(brightness=0.2, contrast=0.2, saturation=0.2, hue=0.0,
                      p=1.0),
    ] + ([A.FancyPCA(alpha=0.1, p=1.0)] if fancy_pca else []) + [
        A.ToFloat(max_value=1.0),  # float32, pixels still 0..255
    ], seed=seed)


def _album_init(folder, src_shape, out_shape, crop, seed, fancy_pca):
    """Pool initializer: one thread, the shared arrays, the pipeline."""
    import cv2
    import numpy as np
    cv2.setNumThreads(1)
    _WORKER["src"] = np.memmap(os.path.join(folder, "src"), np.uint8, "r",
                               shape=src_shape)
    _WORKER["out"] = np.memmap(os.path.join(folder, "out"), np.float32, "r+",
                               shape=out_shape)
    _WORKER["pipeline"] = _album_pipeline(crop, seed + os.getpid(), fancy_pca)


def _album_chunk(task):
    """Writes images start..stop of the batch in `slot` into shared memory."""
    slot, first, start, stop = task
    src, out, pipeline = _WORKER["src"], _WORKER["out"], _WORKER["pipeline"]
    for j in range(start, stop):
        out[slot, j] = pipeline(image=src[(first + j) % len(src)])["image"]
    return slot


def _time_albumentations(name, images, fancy_pca=True):
    """(result dict or None, version or a reason it did not run)."""
    try:
        import albumentations
        import cv2  # noqa: F401
    except ImportError as e:
        return None, f"not installed ({e})"
    import multiprocessing

    import numpy as np
    batch, crop, workers = FLAGS.batch_size, FLAGS.crop, FLAGS.album_workers
    chunk = FLAGS.album_chunk or -(-batch // workers)
    slots = workers * FLAGS.album_prefetch
    shm = "/dev/shm" if os.path.isdir("/dev/shm") else None
    folder = tempfile.mkdtemp(prefix="augment-bench-", dir=shm)
    out_shape = (slots, batch, crop, crop, 3)
    saved = {k: os.environ.get(k) for k in
             ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
    pool = None
    try:
        src = np.memmap(os.path.join(folder, "src"), np.uint8, "w+",
                        shape=images.shape)
        src[:] = images
        src.flush()
        out = np.memmap(os.path.join(folder, "out"), np.float32, "w+",
                        shape=out_shape)
        # Spawned workers (not forked from a process running TensorFlow's
        # threads), one BLAS thread each: one core per worker.
        os.environ.update({k: "1" for k in saved})
        pool = multiprocessing.get_context("spawn").Pool(
            workers, initializer=_album_init,
            initargs=(folder, images.shape, out_shape, crop, FLAGS.seed,
                      fancy_pca))
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        pending, counter = collections.deque(), [0]

        def submit(slot):
            first = counter[0] * batch
            counter[0] += 1
            pending.append((slot, [
                pool.apply_async(_album_chunk, ((slot, first, s,
                                                 min(s + chunk, batch)),))
                for s in range(0, batch, chunk)]))

        for slot in range(slots):
            submit(slot)
        last = [None]

        def next_batch():
            # The consumer is done with the previous batch: its slot refills.
            if last[0] is not None:
                submit(last[0])
            slot, results = pending.popleft()
            for r in results:
                r.get()
            last[0] = slot
            return out[slot]

        _check(name, next_batch(), (batch, crop, crop, 3))
        pids = [p.pid for p in pool._pool]  # the workers, for cores busy
        result = _time_batches(next_batch, FLAGS.warmup, FLAGS.batches,
                               FLAGS.repeats, batch, pids=pids)
        result.update(workers=workers, chunk=chunk, batches_in_flight=slots)
        return result, albumentations.__version__
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()
        shutil.rmtree(folder, ignore_errors=True)


# -------------------------------------------------------------- model step

def _model_steps(images):
    """{row name: result} for the small CNN, augmentation in the model."""
    import keras
    import numpy as np
    import tensorflow as tf

    from keras_cnnpractice.layers import augment_steps as steps
    batch, crop, size = FLAGS.batch_size, FLAGS.crop, FLAGS.source_size
    short_side = (round(crop * 256 / 224), round(crop * 480 / 224))
    x = tf.constant(images[:batch] if len(images) >= batch else
                    np.resize(images, (batch,) + images.shape[1:]))
    y = tf.constant(np.random.default_rng(FLAGS.seed).integers(
        0, 10, batch).astype("int32"))

    def build(front):
        keras.utils.set_random_seed(FLAGS.seed)
        inputs = keras.Input((size, size, 3), dtype="uint8")
        h = front(inputs)
        h = keras.layers.Rescaling(1 / 255.0)(h)
        h = keras.layers.Conv2D(16, 3, strides=2, activation="relu")(h)
        h = keras.layers.MaxPooling2D()(h)
        h = keras.layers.Conv2D(32, 3, strides=2, activation="relu")(h)
        h = keras.layers.MaxPooling2D()(h)
        h = keras.layers.Conv2D(64, 3, activation="relu")(h)
        h = keras.layers.GlobalAveragePooling2D()(h)
        return keras.Model(inputs, keras.layers.Dense(10)(h))

    def center_crop(inputs):
        h = keras.layers.CenterCrop(crop, crop)(inputs)
        return keras.layers.Lambda(lambda t: tf.cast(t, "float32"))(h)

    cases = [
        ("natural in the model, jit_compile=True",
         lambda t: _natural(steps.ScaleCrop(short_side, crop), FLAGS.seed,
                            "xla")(t),
         True),
        ("natural in the model, jit_compile=False",
         lambda t: _natural(steps.ScaleCrop(short_side, crop), FLAGS.seed,
                            "xla")(t),
         False),
        ("central crop, no augmentation, jit_compile=True", center_crop,
         True),
    ]
    results = {}
    for label, front, jit in cases:
        model = build(front)
        model.compile(optimizer="sgd", jit_compile=jit,
                      loss=keras.losses.SparseCategoricalCrossentropy(
                          from_logits=True))
        loss = model.train_on_batch(x, y)  # builds, traces, compiles
        if not np.all(np.isfinite(loss)):
            raise SystemExit(f"augment.py: model step ({label}) gave a "
                             f"non-finite loss {loss}; not timing it")

        def step(model=model):
            model.train_on_batch(x, y)  # returns the loss on the host

        result = _time_batches(step, FLAGS.model_warmup, FLAGS.model_steps,
                               FLAGS.repeats, batch)
        result.update(jit_compile_requested=jit,
                      jit_compile=bool(model.jit_compile))
        results[f"model step: {label}"] = result
        print(f"model step, {label}: {batch / result['images_per_s'] * 1e3:.1f}"
              f" ms/step (jit_compile in effect: {model.jit_compile})",
              flush=True)
        del model
        keras.backend.clear_session()
        gc.collect()
    return results


# -------------------------------------------------------------------- main

def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    unknown = [m for m in FLAGS.methods if m not in METHODS]
    if unknown:
        raise app.UsageError(f"unknown --methods {unknown}; valid: "
                             f"{', '.join(METHODS)}")
    if FLAGS.quick:
        for key, value in _QUICK.items():
            if not FLAGS[key].present:
                setattr(FLAGS, key, value)
    if FLAGS.crop > FLAGS.source_size:
        raise app.UsageError("--crop must be <= --source_size")
    import keras
    import numpy as np
    import tensorflow as tf

    load_before = _load()
    batch, crop, size = FLAGS.batch_size, FLAGS.crop, FLAGS.source_size
    images = np.random.default_rng(FLAGS.seed).integers(
        0, 256, (FLAGS.images, size, size, 3), dtype=np.uint8)
    keys = [k for k in METHODS if k in FLAGS.methods]
    results, outputs, notes = {}, {}, {}
    tf_methods = _tf_methods(keys)
    for key in keys:
        name = METHODS[key]
        if key in tf_methods:
            fn, out_size = tf_methods[key]
            results[name] = _time_tf(name, fn, out_size, images)
            outputs[name] = out_size
        elif key in (BASELINE, "album_nopca"):
            result, album_version = _time_albumentations(
                name, images, fancy_pca=key == BASELINE)
            if result is None:
                notes[name] = album_version
                print(f"{name}: {album_version}", flush=True)
                continue
            results[name] = result
            outputs[name] = crop
        elif key == "model":
            if FLAGS.model_steps:
                for label, result in _model_steps(images).items():
                    results[label] = result
                    outputs[label] = crop
            continue
        r = results[name]
        print(f"{name}: {r['images_per_s']:,.0f} images/s, "
              f"{batch / r['images_per_s'] * 1e3:.1f} ms/batch, "
              f"{r['cores_busy']:.2f} cores busy", flush=True)
    if BASELINE not in keys and "album_nopca" not in keys:
        album_version = "not measured (--methods)"
    load_after = _load()

    album = results.get(METHODS[BASELINE], {}).get("images_per_s")
    goal = results.get(METHODS[GOAL_METHOD], {}).get("images_per_s")
    ratio = goal / album if goal and album else None
    rows, table = [], []
    for name, r in results.items():
        rate = r["images_per_s"]
        entry = dict(r, method=name, ms_per_batch=batch / rate * 1e3,
                     output=[outputs[name], outputs[name], 3],
                     ratio_vs_albumentations=rate / album if album else None)
        table.append(entry)
        rows.append([name, f"{outputs[name]}x{outputs[name]}",
                     f"{batch / rate * 1e3:.1f}", f"{rate:,.0f}",
                     f"{r['cores_busy']:.2f}",
                     f"{rate / album:.2f}x" if album else "-"])
    for name, note in notes.items():
        table.append({"method": name, "status": note})
        rows.append([name, "-", note, "-", "-", "-"])

    if ratio is not None:
        goal_line = (f"fused natural vs albumentations: {ratio:.2f}x (goal >= "
                     f"{GOAL_RATIO:g}x: "
                     f"{'met' if ratio >= GOAL_RATIO else 'NOT met'})")
    else:
        goal_line = ("fused natural vs albumentations: not measured ("
                     + ("albumentations " + notes[METHODS[BASELINE]]
                        if METHODS[BASELINE] in notes else "--methods")
                     + ")")
    nopca = results.get(METHODS["album_nopca"], {}).get("images_per_s")
    ratio_nopca = goal / nopca if goal and nopca else None
    if ratio_nopca is not None:
        goal_line += (f"; {ratio_nopca:.2f}x albumentations without "
                      "FancyPCA (which computes each image's own PCA, where "
                      "Lighting uses fixed ImageNet components)")
    print("\n" + goal_line)
    cpu_flags = _cpu_flags()
    versions = {"tensorflow": tf.__version__, "keras": keras.__version__,
                "numpy": np.__version__, "albumentations": album_version}
    if album is not None or nopca is not None:
        import cv2
        versions["opencv"] = cv2.__version__
    command = " ".join(["python", "benchmarks/augment.py"] + sys.argv[1:])
    payload = {
        "benchmark": "augment", "command": command,
        "load_average_before": load_before, "load_average_after": load_after,
        "cpu_flags": cpu_flags, "batch_size": batch,
        "source_shape": [size, size, 3], "source_dtype": "uint8",
        "crop": crop, "output_dtype": "float32", "images": FLAGS.images,
        "batches_per_window": FLAGS.batches, "repeats": FLAGS.repeats,
        "warmup_batches": FLAGS.warmup, "model_steps": FLAGS.model_steps,
        "model_warmup": FLAGS.model_warmup, "quick": FLAGS.quick,
        "tf_threads": {
            "intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
            "inter_op": tf.config.threading.get_inter_op_parallelism_threads(),
            "note": "0 = TensorFlow's default (one per core)"},
        "goal_method": METHODS[GOAL_METHOD],
        "natural_vs_albumentations": ratio,
        "natural_vs_albumentations_without_fancypca": ratio_nopca,
        "goal_ratio": GOAL_RATIO,
        "goal_met": ratio >= GOAL_RATIO if ratio is not None else None,
        "versions": versions,
        "devices": [d.name for d in tf.config.list_logical_devices()],
        "results": table,
    }
    title = (f"Augmentation throughput ({batch} x {size}x{size} uint8 -> "
             f"{crop}x{crop} float32"
             + (f"; fused natural {ratio:.2f}x albumentations, goal >= "
                f"{GOAL_RATIO:g}x" if ratio is not None else "")
             + ("; --quick smoke run, not a measurement" if FLAGS.quick
                else "") + ")")
    common.write_results(
        FLAGS.name, payload,
        ["method", "output", "ms per batch", "images/s", "cores busy",
         "vs albumentations"], rows, title)
    footer = [
        "", goal_line, "",
        f"CPU flags: {' '.join(cpu_flags) or 'none found'}",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()),
        f"Load average before / after: {load_before} / {load_after}",
        f"Command: `{command}`",
        "",
        "Model-step rows are ms per train step (augmentation inside the "
        "model, plus the CNN's forward and backward pass), not "
        "augmentation alone.",
    ]
    md = common.RESULTS / f"{FLAGS.name}.md"
    md.write_text(md.read_text() + "\n".join(footer) + "\n")
    print("\n".join(footer))


if __name__ == "__main__":
    app.run(main)

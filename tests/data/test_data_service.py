"""build_pipeline through a tf.data service (in-process dispatcher and
workers), checked against the source read without it; `train.py
--data_service` with servers started by `kcp-data-service`."""

import os
import re
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import tensorflow as tf

from keras_cnnpractice.data import PipelineOptions
from keras_cnnpractice.data import augmentation_policy
from keras_cnnpractice.data import build_pipeline
from keras_cnnpractice.data import load_mnist5k
from keras_cnnpractice.data import pack_dataset
from keras_cnnpractice.data import packed
from keras_cnnpractice.data import service
from keras_cnnpractice.strategies.cluster import free_ports
from keras_cnnpractice.training.config import TrainConfig
from keras_cnnpractice.training.config import check_config
from tests.conftest import REPO


@pytest.fixture(scope="module")
def digits():
    (images, labels), _ = load_mnist5k()
    return images[:1200], labels[:1200].astype(np.int32)


@pytest.fixture(scope="module")
def dispatcher():
    """A dispatcher with two workers, in this process."""
    server = service.start_dispatcher()
    workers = [service.start_worker(server.target) for _ in range(2)]
    yield server
    for worker in workers:
        worker.stop()
    server.stop()


def _read(dataset):
    batches = list(dataset.as_numpy_iterator())
    return (np.concatenate([x for x, _ in batches]),
            np.concatenate([y for _, y in batches]))


def _rows(images):
    """The images as a sorted list of their bytes (a multiset)."""
    return sorted(image.tobytes() for image in images)


def test_dynamic_sharding_delivers_every_example_once(digits, dispatcher):
    options = PipelineOptions(data_service=service.DataService(
        dispatcher.target, "dynamic"))
    images, labels = _read(build_pipeline(digits, 50, seed=0,
                                          options=options))
    assert _rows(images) == _rows(digits[0].astype(np.float32))
    np.testing.assert_array_equal(np.bincount(labels),
                                  np.bincount(digits[1]))


def test_a_raw_pack_is_split_in_chunks_and_read_once(dispatcher, tmp_path):
    pack_dataset("mnist5k", tmp_path / "pack")
    source = packed(tmp_path / "pack")
    alone = _read(build_pipeline(source, 100, training=False,
                                 options=PipelineOptions(image_dtype=None)))
    options = PipelineOptions(image_dtype=None, data_service=service
                              .DataService(dispatcher.target, "dynamic"))
    through = _read(build_pipeline(source, 100, seed=0, options=options))
    assert len(through[0]) == source.info.num_examples == 4000
    assert _rows(through[0]) == _rows(alone[0])
    np.testing.assert_array_equal(np.bincount(through[1]),
                                  np.bincount(alone[1]))


def test_augmented_batches_keep_the_labels(digits, dispatcher):
    # The fused augmentation is a compiled op: the servers loaded it.
    augment = augmentation_policy("digits", seed=0, input_shape=(28, 28, 1),
                                  implementation="op")
    ds = build_pipeline(digits, 64, augment=augment, seed=0,
                        options=PipelineOptions(data_service=service
                                                .DataService(dispatcher.target)))
    images, labels = _read(ds)
    assert images.shape == (1200, 28, 28, 1) and images.dtype == np.float32
    np.testing.assert_array_equal(np.bincount(labels),
                                  np.bincount(digits[1]))


def test_sharding_off_gives_each_worker_an_epoch(digits, dispatcher):
    options = PipelineOptions(data_service=service.DataService(
        dispatcher.target, "off"))
    _, labels = _read(build_pipeline(digits, 50, seed=0, options=options))
    np.testing.assert_array_equal(np.bincount(labels),
                                  2 * np.bincount(digits[1]))


def test_the_service_turns_auto_sharding_off(digits, dispatcher):
    ds = build_pipeline(digits, 50, options=PipelineOptions(
        shard_policy="data",
        data_service=service.DataService(dispatcher.target)))
    assert ds.options().experimental_distribute.auto_shard_policy == \
        tf.data.experimental.AutoShardPolicy.OFF


@pytest.mark.parametrize("transfer_dtype", ["float16", "float32"])
def test_float32_travels_as_the_transfer_dtype(dispatcher, transfer_dtype):
    values = np.random.default_rng(0).uniform(0, 255, (64, 8, 8, 3)).astype(
        np.float32)
    labels = np.arange(64, dtype=np.int64)
    dataset = tf.data.Dataset.from_tensor_slices((values, labels)).batch(8)
    read = service.DataService(dispatcher.target, "dynamic",
                               transfer_dtype=transfer_dtype).distribute(
                                   dataset)
    assert read.element_spec == dataset.element_spec  # float32 again
    images, got = _read(read)
    order = np.argsort(got)
    np.testing.assert_array_equal(got[order], labels)
    expected = values.astype(np.dtype(transfer_dtype)).astype(np.float32)
    np.testing.assert_array_equal(images[order], expected)
    assert np.abs(images[order] - values).max() <= (
        0.0625 if transfer_dtype == "float16" else 0)


def test_no_dispatcher_fails_within_the_timeout(digits):
    (port,) = free_ports(1)
    start = time.monotonic()
    with pytest.raises(service.ServiceUnavailableError,
                       match=f"No tf.data service dispatcher at "
                             f"grpc://127.0.0.1:{port} after 1 s"):
        build_pipeline(digits, 50, options=PipelineOptions(
            data_service=service.DataService(f"grpc://127.0.0.1:{port}",
                                             timeout_s=1)))
    assert time.monotonic() - start < 10


@pytest.mark.parametrize("address", [
    "localhost:5050", "grpc://localhost", "grpc://localhost:0",
    "grpc://localhost:70000", "http://localhost:5050", "", None])
def test_bad_addresses(address):
    with pytest.raises(ValueError, match="grpc://HOST:PORT"):
        service.DataService(address)


@pytest.mark.parametrize("kwargs, message", [
    ({"sharding": "file"}, "sharding must be one of dynamic, off, static"),
    ({"job_name": ""}, "job_name must be None or a non-empty string"),
    ({"timeout_s": 0}, "timeout_s"),
    ({"compression": "gzip"}, "compression must be one of none, auto"),
    ({"transfer_dtype": "bfloat16"}, "transfer_dtype must be one of float16"),
])
def test_bad_service_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        service.DataService("grpc://localhost:5050", **kwargs)


def test_options_take_a_data_service_only():
    with pytest.raises(ValueError, match="data_service must be None or a "
                                         "DataService"):
        PipelineOptions(data_service="grpc://localhost:5050")


def _serve(role, *flags):
    process = subprocess.Popen(
        [sys.executable, "-m", "keras_cnnpractice.cli.data_service", role,
         *flags], cwd=REPO, env=dict(os.environ, PYTHONUNBUFFERED="1"),
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = process.stdout.readline()
    assert line.startswith(f"Serving tf.data service {role} at "), line
    return process


@pytest.mark.integration
def test_a_restarted_dispatcher_resumes_the_epoch_from_its_journal(tmp_path):
    (port,) = free_ports(1)
    journal = f"--work_dir={tmp_path / 'journal'}"
    dispatcher = _serve("dispatcher", f"--port={port}", journal)
    worker = _serve("worker", f"--dispatcher=grpc://localhost:{port}")
    batches, done = [], threading.Event()
    try:
        read = service.DataService(f"grpc://localhost:{port}", "dynamic",
                                   job_name="journal").distribute(
            tf.data.Dataset.range(2000).batch(10))
        iterator = iter(read)
        batches += [next(iterator).numpy() for _ in range(20)]
        dispatcher.kill()  # mid-epoch
        dispatcher.wait()
        dispatcher = _serve("dispatcher", f"--port={port}", journal)

        def rest():
            batches.extend(b.numpy() for b in iterator)
            done.set()

        threading.Thread(target=rest, daemon=True).start()
        assert done.wait(timeout=120), "the epoch did not go on"
    finally:
        for server in (dispatcher, worker):
            server.kill()
            server.wait()
    # The restarted dispatcher knew the job and the splits it had handed
    # out: each example at most once, and the epoch went on to its end (a
    # split handed out as the dispatcher died may be lost: 1 of 2,000 in
    # one run, dynamic sharding's at-most-once).
    seen = np.concatenate(batches)
    assert len(np.unique(seen)) == len(seen)
    assert set(seen.tolist()) <= set(range(2000))
    assert len(seen) >= 1980


@pytest.mark.parametrize("flags, message", [
    ({"cache": "memory"}, "does not combine with --cache"),
    ({"data_service": "localhost:1"}, "grpc://HOST:PORT"),
])
def test_flags_that_do_not_combine_with_the_service(flags, message):
    config = TrainConfig(**{"data_service": "grpc://localhost:5050", **flags})
    with pytest.raises(ValueError, match=message):
        check_config(config)


def _launch(*args):
    return subprocess.Popen(
        [sys.executable, "-m", "keras_cnnpractice.cli.launch", *args],
        cwd=REPO, env=dict(os.environ, PYTHONUNBUFFERED="1"), text=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


@pytest.mark.integration
def test_launcher_appends_the_service_address_to_the_command():
    launcher = _launch("--workers=1", "--data_workers=1",
                       "--cluster_timeout_s=60", "--", sys.executable, "-c",
                       "import sys; print('ARGS', sys.argv[1:])")
    out, _ = launcher.communicate(timeout=120)
    assert launcher.returncode == 0, out
    assert re.search(r"\[worker:0\] ARGS \['--data_service=grpc://127\.0\.0"
                     r"\.1:\d+'\]", out), out
    assert "[launch] stopping data-dispatcher, data-worker:0" in out, out


@pytest.mark.integration
def test_a_killed_data_worker_is_restarted_and_mirrored_training_goes_on(
        tmp_path):
    (port,) = free_ports(1)
    launcher = _launch("--data_workers=2", f"--data_port={port}")
    lines = []
    try:
        for line in launcher.stdout:
            lines.append(line)
            if line.startswith("[launch] tf.data service at"):
                break
        pids = [int(m.group(1)) for m in map(re.compile(
            r"\[launch\] started data-worker:\d \(pid (\d+)\)").match, lines)
            if m]
        assert len(pids) == 2, lines
        trainer = subprocess.Popen(
            [sys.executable, "train.py", "--strategy=mirrored",
             "--num_devices=2", "--epochs=3", "--steps_per_epoch=20",
             f"--data_service=grpc://127.0.0.1:{port}",
             f"--model_dir={tmp_path}"], cwd=REPO, text=True,
            env=dict(os.environ, PYTHONUNBUFFERED="1"),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        seen = []
        for line in trainer.stdout:
            seen.append(line)
            if line.startswith("Epoch 2/3"):
                os.kill(pids[0], 9)  # mid-training
        trainer.wait(timeout=300)
        assert trainer.returncode == 0, "".join(seen[-30:])
        assert "Strategy: MirroredStrategy, 2 replicas in sync\n" in seen
        assert (f"Data service: grpc://127.0.0.1:{port}, dynamic "
                "sharding\n") in seen
        assert any(line.startswith("Epoch 3/3") for line in seen)
        assert (tmp_path / "export" / "saved_model.pb").is_file()
        assert any("max abs difference from the trained model" in line
                   for line in seen)
    finally:
        launcher.send_signal(2)  # Ctrl-C stops the service
        out, _ = launcher.communicate(timeout=60)
    assert re.search(r"\[launch\] data-worker:0 exited with -9; started "
                     r"again", out), out
    assert launcher.returncode == 130


@pytest.mark.integration
def test_parameter_server_workers_read_one_job_of_the_service(tmp_path):
    launcher = _launch("--workers=2", "--ps=1", "--data_workers=1",
                       "--cluster_timeout_s=90", "--", sys.executable,
                       "train.py", "--strategy=parameter_server",
                       "--epochs=2", "--steps_per_epoch=10",
                       f"--model_dir={tmp_path}")
    out, _ = launcher.communicate(timeout=300)
    assert launcher.returncode == 0, out[-3000:]
    assert re.search(r"\[chief:0\] Data service: grpc://127\.0\.0\.1:\d+, "
                     r"dynamic sharding", out), out[-3000:]
    assert re.search(r"\[chief:0\] Epoch 2/2: .* step 20 ", out), out[-3000:]
    assert (tmp_path / "export" / "saved_model.pb").is_file()


@pytest.mark.integration
def test_train_py_without_a_dispatcher_fails_in_one_line(tmp_path):
    start = time.monotonic()
    result = subprocess.run(
        [sys.executable, "train.py", "--strategy=off", "--epochs=1",
         "--data_service=grpc://no-such-host.invalid:5050",
         "--cluster_timeout_s=3", f"--model_dir={tmp_path}"], cwd=REPO,
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "train.py: error: No tf.data service dispatcher at "
        "grpc://no-such-host.invalid:5050 after 3 s (Name or service not "
        "known)"], result.stderr
    assert time.monotonic() - start < 60


@pytest.mark.integration
def test_multi_worker_trainers_without_a_dispatcher_stop_in_one_line(
        tmp_path):
    (port,) = free_ports(1)  # nothing listens there
    start = time.monotonic()
    launcher = _launch("--workers=2", "--cluster_timeout_s=90", "--",
                       sys.executable, "train.py",
                       "--strategy=multi_worker_mirrored", "--epochs=1",
                       f"--data_service=grpc://127.0.0.1:{port}",
                       "--cluster_timeout_s=5", f"--model_dir={tmp_path}")
    out, _ = launcher.communicate(timeout=300)
    assert launcher.returncode == 1, out[-3000:]
    error = (f"train.py: error: No tf.data service dispatcher at "
             f"grpc://127.0.0.1:{port} after 5 s")
    assert re.search(rf"\[worker:\d\] {re.escape(error)}", out), out[-3000:]
    assert "Traceback" not in out
    assert time.monotonic() - start < 120

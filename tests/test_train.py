"""train.py end to end: flags, artifacts, export, predict, kill and resume."""

import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from keras_cnnpractice.cli import _log
from tests.conftest import REPO
from tests.conftest import run_python

pytestmark = pytest.mark.integration

SMALL = ["--strategy=mirrored", "--batch_size=32", "--seed=1"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    model_dir = tmp_path_factory.mktemp("run")
    result = run_python(["train.py", *SMALL, "--epochs=2",
                         "--steps_per_epoch=6", f"--model_dir={model_dir}"])
    return model_dir, result.stdout + result.stderr


@pytest.mark.parametrize("flag, message", [
    ("--strategy=horovod", "--strategy=horovod: value should be one of"),
    ("--dataset=imagenet", "--dataset=imagenet: dataset must be one of"),
    ("--epochs=0", "--epochs=0"),
    ("--no_such_flag=1", "Unknown command line flag 'no_such_flag'"),
    ("--weights_format=fixed8", "weights_format must be 'float' or"),
    ("--optimizer=lbfgs", "--optimizer=lbfgs: value should be one of"),
    ("--classes=5-x", "classes must be a comma-separated list"),
])
def test_bad_flags_give_one_line_error(flag, message):
    result = run_python(["train.py", flag], check=False)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    errors = [ln for ln in lines if ln.startswith("train.py:")]
    assert errors == [lines[-1]] and errors[0].startswith("train.py: error:")
    assert message in errors[0]
    assert "Traceback" not in result.stderr


def test_run_writes_everything(trained):
    model_dir, log = trained
    assert "MirroredStrategy, 2 replicas in sync" in log
    assert "Test accuracy:" in log
    flags = json.loads((model_dir / "flags.json").read_text())
    assert flags["strategy"] == "mirrored" and flags["epochs"] == 2
    assert flags["batch_size"] == 32 and flags["dataset"] == "mnist5k"
    assert sorted(p.name for p in (model_dir / "checkpoints").iterdir()) == [
        "epoch-1.weights.h5", "epoch-2.weights.h5"]
    assert any((model_dir / "logs").rglob("events.out.tfevents.*"))
    history = (model_dir / "history.csv").read_text().splitlines()
    assert history[0].split(",")[0] == "epoch" and len(history) == 3
    assert (model_dir / "loss.svg").is_file()
    assert (model_dir / "accuracy.svg").is_file()
    assert (model_dir / "export" / "saved_model.pb").is_file()
    result = json.loads((model_dir / "result.json").read_text())
    assert result["replicas"] == 2 and result["export_max_abs_diff"] <= 1e-5
    assert not list(model_dir.glob("export.tmp-*"))


def test_the_default_log_is_quiet(trained):
    _, log = trained
    lines = log.splitlines()
    # No native start-up lines, no CUDA probe on a machine without a GPU
    # driver, no Python INFO logs of TensorFlow, no warning of Keras's own.
    noise = [line for line in lines if line[:1] in "IWE" and line[1:5].isdigit()
             or "INFO:tensorflow" in line or "absl::InitializeLog" in line
             or "UserWarning" in line]
    if not os.path.exists("/dev/nvidiactl"):
        noise += [line for line in lines if "cuInit" in line]
    assert noise == [], noise
    # Not a terminal: one line per epoch (its summary), no progress bar.
    assert [line for line in lines if line.startswith("Epoch ")] == [
        "Epoch 1/2", "Epoch 2/2"]
    assert sum(" - loss: " in line for line in lines) == 2
    assert "\r" not in log and "━" not in log


def test_verbose_shows_tensorflows_log(tmp_path):
    result = run_python(["train.py", "--strategy=off", "--epochs=1",
                         "--steps_per_epoch=2", "--batch_size=32",
                         "--verbose", f"--model_dir={tmp_path}"])
    assert "INFO:tensorflow" in result.stderr or any(
        line[:1] == "I" and line[1:5].isdigit()
        for line in result.stderr.splitlines())


def test_precision_policy(tmp_path):
    result = run_python(["train.py", "--strategy=off", "--precision=mixed_bfloat16",
                         "--epochs=2", "--steps_per_epoch=3", "--batch_size=32",
                         f"--model_dir={tmp_path}"])
    assert "Precision: mixed_bfloat16" in result.stdout
    saved = json.loads((tmp_path / "result.json").read_text())
    assert saved["precision"] == "mixed_bfloat16" and saved["replicas"] == 1
    assert len(saved["epoch_seconds"]) == 2 and saved["seconds_per_step"] > 0
    assert json.loads((tmp_path / "flags.json").read_text())["precision"] == \
        "mixed_bfloat16"


@pytest.mark.slow
def test_fixed_point_weights_and_tta_flags(tmp_path):
    # Mirrored: the test-time views go through the distributed model too.
    result = run_python(["train.py", "--strategy=mirrored",
                         "--optimizer=momentum",
                         "--weights_format=fixed16:12", "--rounding=nearest",
                         "--model=binary_mlp", "--epochs=1",
                         "--steps_per_epoch=3", "--eval_tta=ten_crop",
                         f"--model_dir={tmp_path}"])
    assert "stored as fixed16:12, nearest rounding" in result.stdout
    assert "with ten_crop test-time averaging" in result.stdout
    saved = json.loads((tmp_path / "result.json").read_text())
    assert saved["eval_tta"] == "ten_crop"
    assert 0.0 <= saved["tta_accuracy"] <= 1.0
    float64 = run_python(["train.py", "--precision=float64",
                          "--weights_format=fixed16:12",
                          f"--model_dir={tmp_path / 'f64'}"], check=False)
    assert float64.returncode == 2
    assert "does not combine with --precision=float64" in float64.stderr


def _trained_model(model_dir):
    from keras_cnnpractice.models import create_model
    model = create_model("mnist_cnn", (28, 28, 1), 10)
    model.load_weights(model_dir / "checkpoints" / "epoch-2.weights.h5")
    return model


def test_saved_model_in_fresh_process_matches_trained_model(trained, tmp_path):
    from keras_cnnpractice.data import load_mnist5k
    model_dir, _ = trained
    _, (x_test, _) = load_mnist5k()
    images = x_test[::5].astype(np.float32)
    np.save(tmp_path / "images.npy", images)
    code = (
        "import sys, numpy as np, tensorflow as tf\n"
        "assert 'keras_cnnpractice' not in sys.modules\n"
        f"m = tf.saved_model.load({str(model_dir / 'export')!r})\n"
        f"x = np.load({str(tmp_path / 'images.npy')!r})\n"
        f"np.save({str(tmp_path / 'served.npy')!r}, m.serve(tf.constant(x)).numpy())\n")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=tmp_path)
    served = np.load(tmp_path / "served.npy")
    expected = _trained_model(model_dir).predict(images, verbose=0)
    assert served.shape == (200, 10)
    assert np.max(np.abs(served - expected)) <= 1e-5


@pytest.mark.slow
def test_predict_cli(trained, tmp_path):
    import tensorflow as tf
    from keras_cnnpractice.data import load_mnist5k
    model_dir, _ = trained
    _, (x_test, _) = load_mnist5k()
    paths = []
    for i, image in enumerate(x_test[::250]):
        path = tmp_path / f"digit{i}.png"
        path.write_bytes(tf.io.encode_png(image).numpy())
        paths.append(str(path))
    big = tmp_path / "big.jpg"  # RGB and 56x56: converted and resized
    big.write_bytes(tf.io.encode_jpeg(tf.image.resize(
        tf.repeat(x_test[:1], 3, axis=-1), (56, 56))[0].numpy().astype(np.uint8)).numpy())
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    result = run_python(["-m", "keras_cnnpractice.cli.predict",
                         f"--saved_model={model_dir / 'export'}", *paths,
                         str(big), str(corrupt)], check=False)
    assert result.returncode == 1
    assert f"skipping {corrupt}: cannot decode image" in result.stderr
    missing = run_python(["-m", "keras_cnnpractice.cli.predict",
                          f"--saved_model={tmp_path / 'nowhere'}", paths[0]],
                         check=False)
    assert missing.returncode == 2
    assert "kcp-predict: error: cannot load SavedModel" in missing.stderr
    assert "Traceback" not in missing.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == len(paths) + 1
    expected = _trained_model(model_dir).predict(
        x_test[::250].astype(np.float32), verbose=0)
    for line, probs in zip(lines, expected):
        head, listing = line.split(" | ")
        printed = np.array([float(item.split(":")[1]) for item in listing.split()])
        np.testing.assert_allclose(printed, probs, atol=2e-6)
        assert head.split(": class ")[1].startswith(str(probs.argmax()))


@pytest.mark.slow
def test_killed_mid_epoch_resumes_from_last_checkpoint(tmp_path):
    args = [sys.executable, "train.py", *SMALL, "--epochs=3",
            "--steps_per_epoch=40", f"--model_dir={tmp_path}"]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    seen = []
    try:
        for line in proc.stdout:
            seen.append(line)
            if "Epoch 2/3" in line:  # epoch 1 is checkpointed, 2 has begun
                proc.send_signal(signal.SIGKILL)
                break
    finally:
        proc.kill()
        proc.wait(timeout=60)
    assert any("Epoch 2/3" in line for line in seen), "".join(seen)[-3000:]
    assert proc.returncode == -signal.SIGKILL
    assert not (tmp_path / "result.json").exists()

    resumed = run_python(args[1:])
    log = resumed.stdout
    assert "Resuming from the checkpoint of epoch 1" in log
    assert "Epoch 1/3" not in log and "Epoch 2/3" in log and "Epoch 3/3" in log
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["initial_epoch"] == 1


def test_sanity_checks_and_explosion_guard_on_a_huge_learning_rate(tmp_path):
    result = run_python(["train.py", "--strategy=off", "--sanity_checks",
                         "--optimizer=sgd", "--learning_rate=50",
                         "--epochs=2", "--steps_per_epoch=4",
                         f"--model_dir={tmp_path}"])
    assert "Sanity check, initial loss: OK" in result.stdout
    assert "Training stopped: Loss exploded" in result.stdout
    assert "probably too high" in result.stdout
    saved = json.loads((tmp_path / "result.json").read_text())
    sanity = saved["sanity_checks"]
    assert abs(sanity["expected"] - np.log(10)) < 1e-9
    assert sanity["initial_loss_ok"] and not sanity["overfit_ok"]
    assert saved["exploded"].startswith("loss")
    # The restored (initial) weights were still exported.
    assert (tmp_path / "export" / "saved_model.pb").is_file()


@pytest.fixture(scope="module")
def pretrained_on_0_to_4(tmp_path_factory):
    model_dir = tmp_path_factory.mktemp("digits0-4")
    run_python(["train.py", "--strategy=off", "--classes=0-4", "--epochs=1",
                "--steps_per_epoch=5", f"--model_dir={model_dir}"])
    return model_dir


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["finetune", "multistage", "features"])
def test_transfer_from_a_train_py_run(pretrained_on_0_to_4, tmp_path, mode):
    import h5py
    result = run_python(["train.py", "--strategy=off", "--classes=5-9",
                         "--train_examples_per_class=4", "--epochs=2",
                         f"--init_from={pretrained_on_0_to_4}",
                         "--new_head_classes=5", f"--transfer={mode}",
                         f"--model_dir={tmp_path}"])
    assert f"Transfer: {mode} from" in result.stdout
    assert "new layers: new_head" in result.stdout
    assert ("Stage 1: trained the new head alone" in result.stdout) == (
        mode == "multistage")
    saved = json.loads((tmp_path / "result.json").read_text())
    assert saved["export_max_abs_diff"] <= 1e-5
    if mode == "features":
        index = json.loads((tmp_path / "features" / "index.json").read_text())
        assert index["complete"] and index["count"] == 20
    else:
        checkpoint = tmp_path / "checkpoints" / "epoch-2.weights.h5"
        with h5py.File(checkpoint) as f:  # the new head: 128 -> 5 classes
            assert f["layers/dense_1/vars/0"].shape == (128, 5)


def test_transfer_flags_are_checked(pretrained_on_0_to_4, tmp_path):
    result = run_python(["train.py", "--classes=5-9", "--new_head_classes=3",
                         f"--init_from={pretrained_on_0_to_4}",
                         f"--model_dir={tmp_path}"], check=False)
    assert result.returncode == 2
    assert "--new_head_classes=3, but the training data has 5" in result.stderr


def test_the_log_filter_drops_a_native_line_and_its_continuation():
    lines = [b"Data: mnist5k\n",
             b"I0000 00:00:1.5 12 worker_impl.cc:90] Starting worker with "
             b"config: port: 5051\n", b'protocol: "grpc"\n',
             b"heartbeat {\n", b"  interval_ms: 30000\n", b"}\n", b"\n",
             b"Serving tf.data service worker at 127.0.0.1:5051\n",
             b"loss: 0.5\n", b"W0000 00:00:1.6 12 x.cc:1] noise\n",
             b"Traceback (most recent call last):\n",
             b"W0000 00:00:1.7 12 png_io.cc:96] PNG warning\n",
             b"predict: skipping a.png: cannot decode image (Invalid PNG)\n",
             b"I0000 00:00:1.8 12 w.cc:9] config: mode: DEPLOYMENT_COLOCATED\n",
             b"fault_tolerant_mode: false\n", b'name: "a \\"b\\" c"\n',
             b"loss: nan\n"]
    result = subprocess.run(
        [sys.executable, "-c", _log._FILTER, _log.noise_pattern(False)],
        input=b"".join(lines), capture_output=True, check=True, timeout=60)
    assert result.stderr.splitlines(keepends=True) == [
        lines[0], lines[7], lines[8], lines[10], lines[12], lines[16]]

"""train.py restarts after its newest checkpoints were damaged: it sets
them aside, resumes from the newest one that verifies, and finishes."""

import json

import h5py
import pytest

from tests.conftest import run_python

pytestmark = pytest.mark.integration

_ARGS = ["train.py", "--strategy=off", "--batch_size=16",
         "--steps_per_epoch=2", "--seed=1"]


def _train(model_dir, epochs):
    result = run_python([*_ARGS, f"--epochs={epochs}",
                         f"--model_dir={model_dir}"], check=False)
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-3000:]
    assert "Traceback" not in log
    return log


def _flip_a_data_byte(path):
    """Flips one byte of a kernel's stored values (HDF5 says where they
    are): the file still opens and loads, only its digest can tell."""
    with h5py.File(path, "r") as f:
        name = next(n for n in _datasets(f) if f[n].ndim >= 2)
        offset = f[name].id.get_offset()
    raw = bytearray(path.read_bytes())
    raw[offset] ^= 0x40
    path.write_bytes(bytes(raw))


def _datasets(h5file):
    names = []
    h5file.visititems(lambda n, obj: names.append(n)
                      if isinstance(obj, h5py.Dataset) else None)
    return names


@pytest.mark.slow
def test_restart_after_truncated_bit_flipped_and_deleted_checkpoints(tmp_path):
    checkpoints = tmp_path / "checkpoints"
    _train(tmp_path, epochs=3)
    epoch = {n: checkpoints / f"epoch-{n}.weights.h5" for n in (1, 2, 3)}
    truncated = epoch[3].read_bytes()[:epoch[3].stat().st_size // 3]
    epoch[3].write_bytes(truncated)
    _flip_a_data_byte(epoch[2])

    # Truncated epoch 3 and bit-flipped epoch 2: both set aside, epoch 1
    # restored, epochs 2 and 3 trained again.
    log = _train(tmp_path, epochs=3)
    assert "Resuming from the checkpoint of epoch 1 " in log
    assert "Epoch 2/3" in log and "Epoch 3/3" in log and "Epoch 1/3" not in log
    for n, why in ((3, "cannot be read"), (2, "digest does not match")):
        lines = [ln for ln in log.splitlines()
                 if f"Checkpoint {epoch[n]} does not verify" in ln]
        assert len(lines) == 1 and why in lines[0], log[-3000:]
    assert (checkpoints / "epoch-3.weights.h5.corrupt").read_bytes() == \
        truncated
    assert (checkpoints / "epoch-2.weights.h5.corrupt").is_file()
    assert json.loads((tmp_path / "result.json").read_text())[
        "initial_epoch"] == 1

    # Deleted newest: the one before it is the resume point.
    epoch[3].unlink()
    log = _train(tmp_path, epochs=3)
    assert "Resuming from the checkpoint of epoch 2 " in log
    assert "Epoch 3/3" in log and "Epoch 2/3" not in log
    assert "does not verify" not in log
    assert epoch[3].is_file()

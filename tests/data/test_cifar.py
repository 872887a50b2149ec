"""cifar10_binary / cifar100_binary on small fake files written with numpy."""

import pathlib

import numpy as np
import pytest

from keras_cnnpractice.data import cifar100_binary
from keras_cnnpractice.data import cifar10_binary


def write_records(path, labels, images):
    """CIFAR binary records: label byte(s), then the CHW planes."""
    planes = images.transpose(0, 3, 1, 2).reshape(len(images), -1)
    path.write_bytes(np.concatenate([labels, planes], axis=1).tobytes())


def fake_cifar10(folder, per_file=3):
    rng = np.random.default_rng(0)
    names = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]
    data = {}
    for name in names:
        images = rng.integers(0, 256, (per_file, 32, 32, 3), np.uint8)
        labels = rng.integers(0, 10, (per_file, 1), np.uint8)
        write_records(folder / name, labels, images)
        data[name] = (images, labels[:, 0])
    return data


def as_arrays(examples):
    pairs = list(examples.dataset.as_numpy_iterator())
    return (np.stack([x for x, _ in pairs]), np.array([y for _, y in pairs]))


def test_cifar10_records_are_transposed_chw_planes(tmp_path):
    data = fake_cifar10(tmp_path)
    train, test = cifar10_binary(tmp_path)
    x, y = as_arrays(train)
    np.testing.assert_array_equal(
        x, np.concatenate([data[f"data_batch_{i}.bin"][0]
                           for i in range(1, 6)]))
    np.testing.assert_array_equal(
        y, np.concatenate([data[f"data_batch_{i}.bin"][1]
                           for i in range(1, 6)]))
    assert x.dtype == np.uint8 and y.dtype == np.int32
    x, y = as_arrays(test)
    np.testing.assert_array_equal(x, data["test_batch.bin"][0])
    np.testing.assert_array_equal(y, data["test_batch.bin"][1])
    assert train.num_examples == 15 and test.num_examples == 3
    assert [p.name for p in map(pathlib.Path, train.files)] == [
        f"data_batch_{i}.bin" for i in range(1, 6)]
    assert train.class_names[0] == "airplane" and len(train.class_names) == 10


def test_cifar10_finds_the_extracted_folder_and_its_class_names(tmp_path):
    inner = tmp_path / "cifar-10-batches-bin"
    inner.mkdir()
    fake_cifar10(inner, per_file=1)
    (inner / "batches.meta.txt").write_text("\n".join("abcdefghij") + "\n\n")
    train, _ = cifar10_binary(tmp_path)
    assert train.class_names == tuple("abcdefghij")


def test_cifar10_missing_or_truncated_file_is_named(tmp_path):
    fake_cifar10(tmp_path, per_file=2)
    (tmp_path / "data_batch_3.bin").unlink()
    with pytest.raises(ValueError, match="data_batch_3.bin"):
        cifar10_binary(tmp_path)
    fake_cifar10(tmp_path, per_file=2)
    path = tmp_path / "test_batch.bin"
    path.write_bytes(path.read_bytes()[:-1])
    with pytest.raises(ValueError, match=r"test_batch.bin has 6145 bytes.*"
                                         r"3073-byte record"):
        cifar10_binary(tmp_path)
    with pytest.raises(ValueError, match="data_dir="):
        cifar10_binary(tmp_path / "nope")


def test_cifar100_fine_and_coarse_labels(tmp_path):
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (4, 32, 32, 3), np.uint8)
    coarse = np.array([[0], [5], [19], [7]], np.uint8)
    fine = np.array([[99], [3], [42], [0]], np.uint8)
    for name in ("train.bin", "test.bin"):
        write_records(tmp_path / name, np.concatenate([coarse, fine], 1),
                      images)
    train, test = cifar100_binary(tmp_path)
    x, y = as_arrays(train)
    np.testing.assert_array_equal(x, images)
    np.testing.assert_array_equal(y, fine[:, 0])
    assert len(train.class_names) == 100
    _, y = as_arrays(cifar100_binary(tmp_path, label_mode="coarse")[1])
    np.testing.assert_array_equal(y, coarse[:, 0])
    with pytest.raises(ValueError, match="label_mode='medium'"):
        cifar100_binary(tmp_path, label_mode="medium")
    (tmp_path / "test.bin").write_bytes(b"\0" * 3073)
    with pytest.raises(ValueError, match="test.bin.*3074-byte"):
        cifar100_binary(tmp_path)

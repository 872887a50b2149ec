"""open_dataset: dataset specs for train.py --dataset=."""

import os

import numpy as np
import pytest

from keras_cnnpractice.data import build_pipeline
from keras_cnnpractice.data import load_dataset
from keras_cnnpractice.data import open_dataset
from keras_cnnpractice.data import pack_dataset
from keras_cnnpractice.data import parse_dataset_spec
from keras_cnnpractice.data import synthetic
from tests.data import image_files as files


def test_specs(tmp_path):
    assert parse_dataset_spec("mnist5k") == ("mnist5k", None)
    assert parse_dataset_spec(f"packed:{tmp_path}") == ("packed",
                                                        str(tmp_path))
    for spec, message in [("imagenet", "dataset must be one of mnist5k, "
                                       "synthetic, cifar10:DIR"),
                          ("mnist5k:x", "dataset must be one of"),
                          ("folder:", "needs a folder, folder:DIR"),
                          (f"cifar10:{tmp_path}/no", "names no folder")]:
        with pytest.raises(ValueError, match=message):
            parse_dataset_spec(spec)


def test_synthetic_and_mnist5k_in_memory():
    source = open_dataset("synthetic")
    assert not source.file_based
    assert (source.train_size, source.test_size) == (4000, 1000)
    assert source.input_shape == (32, 32, 3) and source.num_classes == 10
    np.testing.assert_array_equal(source.train[1], synthetic(4000)[1])
    again = open_dataset("synthetic")
    np.testing.assert_array_equal(source.test[0], again.test[0])
    (x, y), (xt, _), n = load_dataset("mnist5k")
    assert x.shape == (4000, 28, 28, 1) and xt.shape == (1000, 28, 28, 1)
    sub = open_dataset("mnist5k", classes=[7, 3], train_examples_per_class=5)
    assert sub.num_classes == 2 and sub.train_size == 10
    assert sorted(set(sub.test[1])) == [0, 1] and sub.test_size == 200
    with pytest.raises(ValueError, match="open_dataset"):
        load_dataset("folder:/tmp")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """train/ and test/ of two classes; the images have mixed sizes."""
    root = tmp_path_factory.mktemp("spec")
    for split, count in [("train", 6), ("test", 2)]:
        for label in ("a", "b"):
            (root / split / label).mkdir(parents=True)
            for i in range(count):
                shape = (12, 16, 3) if i % 2 else (20, 20, 3)
                (root / split / label / f"{i}.png").write_bytes(
                    files.png(files.noise(shape, i)))
    return root


def test_folder_resizes_mixed_sizes_and_subsets(folder):
    source = open_dataset(f"folder:{folder}")
    assert source.file_based and source.input_shape == (20, 20, 3)
    assert (source.train_size, source.test_size) == (12, 4)
    assert len(source.train_files) == 12
    batch = next(iter(build_pipeline(source.train, 12, seed=0)))
    assert batch[0].shape == (12, 20, 20, 3)
    small = open_dataset(f"folder:{folder}", image_size=8, classes=[1],
                         train_examples_per_class=2, seed=3)
    assert small.input_shape == (8, 8, 3) and small.num_classes == 1
    x, y = small.test_arrays()
    assert x.shape == (2, 8, 8, 3) and list(y) == [0, 0]
    assert small.train_size == 2
    assert sorted(y for _, y in small.train.dataset.as_numpy_iterator()) == [
        0, 0]
    with pytest.raises(ValueError, match="needs the sub-folders train/"):
        open_dataset(f"folder:{folder / 'train'}")
    with pytest.raises(ValueError, match="names class 5, but"):
        open_dataset(f"folder:{folder}", classes=[5])


def test_packed_splits(folder, tmp_path):
    for split in ("train", "test"):
        pack_dataset(folder / split, tmp_path / "p" / split, size=10)
    source = open_dataset(f"packed:{tmp_path / 'p'}", seed=1)
    assert source.input_shape == (10, 10, 3) and source.num_classes == 2
    assert (source.train_size, source.test_size) == (12, 4)
    assert [os.path.basename(p) for p in source.train_files] == [
        "shard-00000.raw"]
    x, y = source.test_arrays(limit=3)
    assert x.shape == (3, 10, 10, 3) and x.dtype == np.uint8
    with pytest.raises(ValueError, match="applies to folder: datasets"):
        open_dataset(f"packed:{tmp_path / 'p'}", image_size=10)

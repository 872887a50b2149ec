"""train.py --dataset= beyond mnist5k, --augment_in and --cache."""

import json
import pytest

from tests.conftest import run_python
from tests.data import image_files as files

pytestmark = pytest.mark.integration


def test_synthetic_with_augmentation_in_the_model(tmp_path):
    result = run_python(["train.py", "--dataset=synthetic", "--strategy=off",
                         "--augment=natural", "--augment_in=model",
                         "--cache=memory", "--epochs=1",
                         "--steps_per_epoch=2", "--batch_size=16",
                         f"--model_dir={tmp_path}"])
    assert "Data: synthetic, 10 classes, 4000 training and 1000 test" in \
        result.stdout
    saved = json.loads((tmp_path / "result.json").read_text())
    assert saved["export_max_abs_diff"] <= 1e-4
    flags = json.loads((tmp_path / "flags.json").read_text())
    assert flags["augment_in"] == "model" and flags["cache"] == "memory"


def test_folder_of_mixed_sizes(tmp_path):
    for split, count in [("train", 6), ("test", 3)]:
        for label in ("a", "b", "c"):
            folder = tmp_path / "data" / split / label
            folder.mkdir(parents=True)
            for i in range(count):
                shape = (20, 30, 3) if i % 2 else (24, 24, 3)
                (folder / f"{i}.png").write_bytes(
                    files.png(files.noise(shape, i)))
    (tmp_path / "data" / "train" / "a" / "bad.jpg").write_text("no")
    result = run_python(["train.py", f"--dataset=folder:{tmp_path / 'data'}",
                         "--image_size=16", "--classes=2,0",
                         "--strategy=off", "--epochs=1", "--batch_size=4",
                         "--eval_tta=flip", f"--model_dir={tmp_path / 'run'}"])
    assert "2 classes, 12 training and 6 test images" in result.stdout
    saved = json.loads((tmp_path / "run" / "result.json").read_text())
    assert 0.0 <= saved["tta_accuracy"] <= 1.0
    assert saved["export_max_abs_diff"] <= 1e-4

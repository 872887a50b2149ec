"""kcp-doctor: stages, a verdict, one-line errors."""

import json
import re

import pytest

from tests.conftest import run_python
from tests.data import image_files as files

pytestmark = pytest.mark.integration

STAGES = ["raw read", "decode", "augmentation (natural, in data)",
          "input pipeline alone", "train step, cached tensors",
          "train step, real pipeline"]


def test_json_report_on_a_tiny_folder(tmp_path):
    for split in ("train", "test"):
        for label in ("a", "b"):
            folder = tmp_path / "data" / split / label
            folder.mkdir(parents=True)
            for i in range(8):
                (folder / f"{i}.jpg").write_bytes(
                    files.jpeg(files.noise((24, 24, 3), i)))
    result = run_python(["-m", "keras_cnnpractice.cli.doctor", "--json",
                         f"--dataset=folder:{tmp_path / 'data'}",
                         "--augment=natural", "--strategy=off",
                         "--batch_size=8", "--steps=2", "--service_workers=1",
                         f"--model_dir={tmp_path / 'run'}"])
    report = json.loads(result.stdout)
    assert [s["stage"] for s in report["stages"]] == [
        *STAGES, "input pipeline, data service, 1 worker"]
    assert report["stages"][-1]["workers"] == 1
    if report["input_bound_fraction"] > 1.05:
        assert re.search(r"one worker delivers [\d,]+ images/s, the step "
                         r"takes [\d,]+: about \d+ workers?", report["fix"])
    # The service's output goes to stderr, without its configuration.
    assert "[doctor] stopping data-dispatcher, data-worker:0: done" in \
        result.stderr
    assert "heartbeat_interval_ms" not in result.stderr
    read = report["stages"][0]
    assert read["files_per_second"] > 0 and read["bytes_per_second"] > 0
    assert all(s["images_per_second"] > 0 for s in report["stages"])
    assert report["input_bound_fraction"] > 0
    assert report["bound_by"] and report["fix"]
    assert report["config"]["dataset"] == f"folder:{tmp_path / 'data'}"
    assert not (tmp_path / "run").exists()  # the doctor writes nothing


@pytest.mark.slow
def test_table_and_bad_flags(tmp_path):
    result = run_python(["-m", "keras_cnnpractice.cli.doctor",
                         "--dataset=synthetic", "--augment=none",
                         "--strategy=off", "--batch_size=16", "--steps=2",
                         f"--model_dir={tmp_path}"])
    lines = result.stdout.strip().splitlines()
    assert lines[0].split()[:3] == ["stage", "images/s", "ms/batch"]
    assert lines[1].startswith("raw read") and "in memory" in lines[1]
    assert lines[-3].startswith("input-bound fraction (real / cached step)")
    assert lines[-2].startswith("bound by: ") and lines[-1].startswith("fix: ")
    for flag, message in [("--dataset=imagenet", "dataset must be one of"),
                          ("--steps=0", "--steps=0"),
                          ("--service_workers=-1", "--service_workers=-1"),
                          ("--dataset=packed:/no/such", "names no folder")]:
        bad = run_python(["-m", "keras_cnnpractice.cli.doctor", flag],
                         check=False)
        assert bad.returncode == 2
        err = bad.stderr.strip().splitlines()
        assert err[-1].startswith("kcp-doctor: error: ") and message in err[-1]
        assert "Traceback" not in bad.stderr

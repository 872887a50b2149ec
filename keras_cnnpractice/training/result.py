"""`RunResult`: what a training run reports, saved as `result.json`."""

import dataclasses
import pathlib
from typing import Optional

from keras_cnnpractice._files import write_json_atomic


@dataclasses.dataclass
class RunResult:
    """What `runner.train` returns and writes to MODEL_DIR/result.json.

    Attributes:
        test_accuracy: accuracy on the held-out images.
        initial_epoch: the epoch the run resumed from (0: a fresh run).
        replicas: replicas in sync.
        workers: worker processes.
        precision: the Keras dtype policy.
        epoch_seconds: wall time of every epoch this process ran.
        seconds_per_step: the median epoch after the first (validation
            included) over its steps; None without such an epoch.
        export_dir: where the SavedModel went.
        export_max_abs_diff: max abs difference between the served and
            the model's class probabilities on test images.
        eval_tta: the test-time views, or "none".
        tta_accuracy: accuracy with them (None without).
        exploded: why the run stopped on a non-finite loss, or None.
        sanity_checks: the `--sanity_checks` report (None without).
        parameter_servers: parameter-server tasks (None unless
            `parameter_server`).
        steps: the global step count at the end (None unless
            `parameter_server`).
    """

    test_accuracy: float
    initial_epoch: int
    replicas: int
    workers: int
    precision: str
    epoch_seconds: list
    seconds_per_step: Optional[float]
    export_dir: str
    export_max_abs_diff: float
    eval_tta: str = "none"
    tta_accuracy: Optional[float] = None
    exploded: Optional[str] = None
    sanity_checks: Optional[dict] = None
    parameter_servers: Optional[int] = None
    steps: Optional[int] = None

    def write(self, directory):
        """Writes DIRECTORY/result.json (the fields that apply)."""
        payload = {key: value for key, value in dataclasses.asdict(
            self).items() if value is not None or key not in (
                "parameter_servers", "steps")}
        write_json_atomic(pathlib.Path(directory) / "result.json", payload)

"""Training curves (loss and accuracy, train vs validation) from history.csv."""

import csv
import pathlib

from keras_cnnpractice.plots import line_plot


def read_history(history_csv):
    """A `keras.callbacks.CSVLogger` file as `{column: [float per epoch]}`
    (`{}` for a file without rows; a missing value, "" or "NA", is NaN)."""
    with pathlib.Path(history_csv).open(newline="") as f:
        rows = list(csv.DictReader(f))
    return {key: [float("nan") if row[key] in ("", "NA") else float(row[key])
                  for row in rows] for key in (rows[0] if rows else ())}


def plot_training_curves(history_csv, out_dir=None):
    """Draws `loss.svg` and `accuracy.svg` from a run's `history.csv`.

    The lecture's two babysitting plots: the loss per epoch (its shape tells
    a learning rate that is too low, too high or about right) and the train
    vs validation accuracy (the gap is overfitting).

    Args:
        history_csv: a `keras.callbacks.CSVLogger` file (`train.py` writes
            MODEL_DIR/history.csv).
        out_dir: where the plots go; default: beside the CSV.

    Returns:
        The paths written (a metric missing from the CSV is skipped).

    Raises:
        ValueError: a CSV without any epoch rows.
    """
    history_csv = pathlib.Path(history_csv)
    history = read_history(history_csv)
    if not history:
        raise ValueError(f"No epochs in {history_csv}. Received: an empty "
                         "history")
    out_dir = pathlib.Path(out_dir or history_csv.parent)
    written = []
    for metric in ("loss", "accuracy"):
        series = {f"{split} {metric}": history[key]
                  for split, key in (("train", metric),
                                     ("validation", f"val_{metric}"))
                  if key in history}
        if series:
            written.append(line_plot(out_dir / f"{metric}.svg", series,
                                     f"{metric.capitalize()} per epoch",
                                     ylabel=metric))
    return written

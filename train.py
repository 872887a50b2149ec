"""`python train.py --strategy=mirrored`: the training command, `kcp-train`
(keras_cnnpractice/cli/train.py), run from a checkout."""

from keras_cnnpractice.cli import train

if __name__ == "__main__":
    train.run(prog="train.py")

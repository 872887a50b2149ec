"""The command-line tools, one module per command, installed as console
scripts (`setup.py`):

| command | module | what it does |
|---|---|---|
| `kcp-train` (or `python train.py`) | `train` | trains, checkpoints, exports a SavedModel |
| `kcp-predict` | `predict` | classifies images with an exported SavedModel |
| `kcp-analyze` | `analyze` | shapes, receptive fields, params, MACs, memory of a model |
| `kcp-doctor` | `doctor` | finds the input pipeline's bottleneck for a training run |
| `kcp-pack` | `pack` | packs an image folder or CIFAR into pre-decoded shards |
| `kcp-tune` | `tune` | random search of learning rate and L2, in log space |
| `kcp-launch` | `launch` | starts a local multi-worker / parameter-server cluster |
| `kcp-augment-preview` | `augment_preview` | draws a grid of augmented images |
| `kcp-ops` | `ops` | reports how the op library was built and what this CPU runs |

Every command parses and checks its flags before TensorFlow is imported
(`--help` and a bad flag answer in a fraction of a second), prints a bad
flag as one line, `PROG: error: ...`, with exit status 2, and keeps
TensorFlow's start-up noise out of the log unless `--verbose`
(`cli/_absl.py`).
"""

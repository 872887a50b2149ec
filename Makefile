# Two commands: `make train` and `make test`. Both create .venv when missing
# and install the package, building the op library against the installed
# TensorFlow (g++, plus nvcc when present). The install is redone when
# setup.py, a requirements file or a C++/CUDA source changes.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.kcp-installed
OP_SOURCES := $(shell find keras_cnnpractice/custom_ops/cc -type f)
PYTEST_ARGS ?=

.PHONY: install train test bench clean

install: $(STAMP)

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(PY) setup.py requirements.txt requirements-test.txt $(OP_SOURCES)
	$(PY) -m pip install --quiet --upgrade pip setuptools wheel
	$(PY) -m pip install --quiet -r requirements.txt -r requirements-test.txt
	$(PY) -m pip install --quiet --no-build-isolation --no-deps -e .
	$(VENV)/bin/kcp-ops
	touch $@

train: install
	$(PY) train.py --strategy=mirrored

# Two test processes (pytest-xdist): much of the suite waits on child
# processes and start-ups, so two share two cores well (12 min instead of
# 16 on a 2-core machine).
test: install
	$(PY) -m pytest -n 2 $(PYTEST_ARGS)

bench: install
	for script in benchmarks/[!_]*.py; do $(PY) $$script || exit 1; done

clean:
	rm -rf build keras_cnnpractice/custom_ops/_cnnpractice_ops*.so *.egg-info

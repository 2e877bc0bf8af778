# KITPose — set-up, tests and the demo. Everything runs inside .venv.
PYTHON_BASE ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.install-stamp

.PHONY: install install-onnx test test-slow test-onnx demo

install: $(STAMP)

# torch==2.14.1/torchvision==0.29.1 install from local disk on the project's machines.
# xtcocotools is built from source: its wheel is compiled against numpy 1 and breaks under numpy 2.
$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON_BASE) -m venv $(VENV)
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-binary xtcocotools --no-build-isolation "xtcocotools>=1.14"
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	touch $@

test: install
	$(PY) -m pytest -q

test-slow: install
	$(PY) -m pytest -q -m slow

# optional: ONNX export and its parity tests
install-onnx: install
	$(PY) -m pip install -q onnx onnxruntime

test-onnx: install-onnx
	$(PY) -m pytest -q -m onnx

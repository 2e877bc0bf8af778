# KITPose — set-up, tests and the demo. Everything runs inside .venv.
PYTHON_BASE ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.install-stamp
# every install into .venv goes through constraints.txt (see $(STAMP) below)
PIP_INSTALL := $(PY) -m pip install -q -c constraints.txt

INTEROP_STAMP := $(VENV)/.interop-stamp

.PHONY: install install-onnx install-interop test test-slow test-onnx demo dlc-example gpu-check-prep

install: $(STAMP)

# The runtime dependencies are pyproject.toml's; torch==2.14.1/torchvision==0.29.1 install from
# local disk on the project's machines. xtcocotools is built from source first (numpy and Cython
# are its build tools): its wheel is compiled against numpy 1 and breaks under numpy 2.
# constraints.txt holds numpy, OpenCV and SciPy to fixed versions, so that fresh clones repeat each
# other's training numbers (README "What make demo does").
$(STAMP): requirements.txt pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON_BASE) -m venv $(VENV)
	$(PIP_INSTALL) "numpy>=1.24" "Cython>=3.0" "setuptools>=61" wheel
	$(PIP_INSTALL) --no-binary xtcocotools --no-build-isolation "xtcocotools>=1.14"
	$(PIP_INSTALL) --no-build-isolation -e ".[test]"
	touch $@

# the interop group (sleap-io, movement; pyproject.toml) is part of what the tests cover
install-interop: $(INTEROP_STAMP)

$(INTEROP_STAMP): $(STAMP) pyproject.toml
	$(PIP_INSTALL) --no-build-isolation -e '.[interop]'
	touch $@

test: install install-interop
	$(PY) -m pytest -q

# the tests marked slow, which `make test` leaves out: the wheel installed into a new venv runs
# import_labels -> train -> test -> infer outside the checkout (tests/test_wheel.py, about 1-2 minutes)
test-slow: install install-interop
	$(PY) -m pytest -q -m slow


# optional: ONNX export and its parity tests
install-onnx: install
	$(PIP_INSTALL) --no-build-isolation -e ".[onnx]"

test-onnx: install-onnx
	$(PY) -m pytest -q -m onnx

# ---- the demo: synthetic quadrupeds -> train -> test (metrics, pictures) -> the real AP-10K samples.
# Ends with the metrics table, the AP (>= 0.85 on the synthetic val split; README has the measured
# figures), the wall time (install included) and the picture folders. Needs no GPU and no download.
# Training runs as 2 single-threaded DDP processes (gloo; the YAML's batch is per process): on a
# small network two processes use 2 cores better than 2 threads, and slow down gracefully when the
# CPU is shared, where multi-threaded steps stall at every parallel region.
DEMO_CFG := experiments/synthetic/kitpose_demo_cpu.yaml
DEMO_DATA := data/synthetic_ap10k
DEMO_RUN := output/ap10k/kitpose_part/kitpose_demo_cpu
DEMO_SAMPLES ?= tests/data/samples/ap10k
DEMO_START := $(shell date +%s)

demo: install
	$(PY) tools/make_synthetic.py --out $(DEMO_DATA) --train 4000 --val 200 --seed 0
	OMP_NUM_THREADS=1 $(VENV)/bin/torchrun --standalone --nproc_per_node 2 tools/train.py --cfg $(DEMO_CFG)
	OMP_NUM_THREADS=1 $(PY) tools/test.py --cfg $(DEMO_CFG) TEST.NUM_VIS 16
	@if [ -d "$(DEMO_SAMPLES)" ]; then \
	  echo "$(PY) tools/infer.py --cfg $(DEMO_CFG) --checkpoint $(DEMO_RUN)/final_state.pth --input $(DEMO_SAMPLES) ..."; \
	  OMP_NUM_THREADS=1 $(PY) tools/infer.py --cfg $(DEMO_CFG) --checkpoint $(DEMO_RUN)/final_state.pth \
	    --input $(DEMO_SAMPLES) --boxes $(DEMO_SAMPLES)/test_ap10k.json --out $(DEMO_RUN)/ap10k_samples; \
	else echo "demo: $(DEMO_SAMPLES) not found; skipping the real AP-10K sample pictures (set DEMO_SAMPLES=DIR)"; fi
	@$(PY) tools/demo_summary.py --run $(DEMO_RUN) --start $(DEMO_START) --min-ap 0.85 --pictures $(DEMO_RUN)/ap10k_samples

# ---- a DeepLabCut project end to end (README "Your own animals"): import, train, PCK/AP, tracked video
# predictions in DeepLabCut/SLEAP/NWB formats read back with sleap-io and movement, a picture.
dlc-example: install install-interop
	bash tools/run_dlc_example.sh "$(DLC_PROJECT)" "$(DLC_VIDEO)" $(DLC_NAME)

# ---- before the GPU check's device run (docs/gpu_check.md): the wheels the device's python3 (3.12) lacks, in
# .whl/, and the gradient check's partly trained model, the demo config after one epoch (about a minute on 2 cores)
PY312 ?= $(shell pyenv root 2>/dev/null)/versions/3.12.1/bin/python3.12
GPU_CHECK_MODEL := output/gpu_check/ap10k/kitpose_part/kitpose_demo_cpu/final_state.pth

gpu-check-prep: .whl/.complete $(GPU_CHECK_MODEL)

# xtcocotools' published wheels are built for numpy 1 and the device has numpy 2: built here against numpy 2
.whl/.complete:
	$(PY312) -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
	  --platform manylinux_2_17_x86_64 -d .whl yacs==0.1.8 tensorboardX==2.6.5
	$(PY312) -m venv /tmp/kitpose_py312 && /tmp/kitpose_py312/bin/pip install -q "numpy>=2" Cython setuptools wheel
	/tmp/kitpose_py312/bin/pip wheel -q --no-deps --no-binary xtcocotools --no-build-isolation -w .whl xtcocotools==1.14.3
	touch $@

$(GPU_CHECK_MODEL): | install
	$(PY) tools/make_synthetic.py --out $(DEMO_DATA) --train 4000 --val 200 --seed 0
	OMP_NUM_THREADS=1 $(VENV)/bin/torchrun --standalone --nproc_per_node 2 tools/train.py --cfg $(DEMO_CFG) \
	  TRAIN.END_EPOCH 1 OUTPUT_DIR output/gpu_check LOG_DIR log/gpu_check

# Two commands: `make demo` and `make test`. Each sets up .venv when it is missing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The torch build this stack is verified with (pip takes it from the machine's wheel store);
# without the pin pip picks the registry's newest.
TORCH_PINS := torch==2.14.1 torchvision==0.29.1

.PHONY: demo test venv clean gpu-check

venv: $(STAMP)

$(STAMP): setup.py Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH_PINS) -e '.[dev,det,deploy,robustness]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) tools/demo.py

# Two pytest-xdist workers, whole files each (the session fixtures of a folder stay on one worker):
# the many tests that wait on a one-thread subprocess leave the other core to the second worker.
test: $(STAMP)
	$(PY) -m pytest -q -n 2 --dist loadfile tests

# On a machine with a CUDA GPU (not CI): the CUDA tests and the CUDA benchmark (README, "GPU check").
gpu-check:
	bash tools/gpu_check.sh

clean:
	rm -rf work_dirs outputs data/ade/synthetic data/imagenet_synthetic

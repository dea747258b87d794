# Quick start: `make demo` builds the demo dataset, `make test` runs the suite.
# Both create .venv with everything installed on first use.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
STAMP := $(VENV)/.installed
# The CPU build of PyTorch is enough for the demo and the tests; a GPU worker image
# installs a CUDA build instead (override: make TORCH_SPEC=torch==2.11.0 ...).
TORCH_SPEC ?= torch==2.13.0

.PHONY: demo test clean

$(STAMP): setup.py
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install "$(TORCH_SPEC)"
	$(VENV)/bin/pip install -e ".[test]"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/python -m pipelines.build --demo

test: $(STAMP)
	$(VENV)/bin/python -m pytest -q tests

clean:
	rm -rf $(VENV) demo-corpus demo-dataset demo-separation demo-concept demo-descriptors *.egg-info

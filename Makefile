# Quick start: `make demo` builds the demo dataset, `make test` runs the suite.
# Both create .venv with everything installed on first use.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
STAMP := $(VENV)/.installed
# The torch pip installs first (the package then keeps it). Which build it is follows the index:
# PyPI's Linux wheel is the CUDA build; TORCH_INDEX=https://download.pytorch.org/whl/cpu takes
# the CPU-only one (or .../whl/cu128 for a given CUDA). See docs/install.md.
TORCH_SPEC ?= torch==2.13.0
TORCH_INDEX ?=

.PHONY: demo test clean

$(STAMP): setup.py
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install "$(TORCH_SPEC)" $(if $(TORCH_INDEX),--index-url "$(TORCH_INDEX)")
	$(VENV)/bin/pip install -e ".[test]"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/python -m pipelines.build --demo

test: $(STAMP)
	$(VENV)/bin/python -m pytest -q tests

clean:
	rm -rf $(VENV) demo-corpus demo-dataset demo-separation demo-concept demo-descriptors *.egg-info

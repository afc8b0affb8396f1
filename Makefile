# Two entry points for a fresh machine: `make demo` (the main job) and `make test`.
# Both create .venv and install the pinned stack into it; requirements/*.txt says why each pin.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check
STAMP := $(VENV)/.installed
SMOKE_DIR ?= /tmp/osrl-unlearn-smoke

.PHONY: setup demo test smoke lint clean-venv

setup: $(STAMP)

$(STAMP): requirements/constraints.txt requirements/base.txt requirements/nodeps.txt requirements/dev.txt setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@# torch first and pinned: an unpinned torch pulls a multi-GB CUDA build.
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -c requirements/constraints.txt -r requirements/base.txt -r requirements/dev.txt
	@# osrl-lib, dsrl and safety-gymnasium carry pins that cannot install on Python 3.11.
	$(PIP) install -q --no-deps -r requirements/nodeps.txt
	$(PIP) install -q --no-deps --no-build-isolation -e .
	$(PY) -m osrl_unlearn.patch_safety_gymnasium
	$(PY) -c "import osrl_unlearn.stack as s; s.check_stack()"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/osrl-unlearn demo

test: $(STAMP)
	$(PY) -m pytest -q

smoke: $(STAMP)
	@# the benchmark grid's smoke profile end to end (results outside the tree), then its report
	rm -rf $(SMOKE_DIR)
	$(PY) benchmarks/run.py --profile smoke --results_dir $(SMOKE_DIR) --show_progress false
	$(PY) benchmarks/report.py --profile smoke --results_dir $(SMOKE_DIR) --out $(SMOKE_DIR).md

lint: $(STAMP)
	$(VENV)/bin/ruff check osrl_unlearn tests benchmarks examples

clean-venv:
	rm -rf $(VENV)

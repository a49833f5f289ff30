# streamclf — every target creates .venv when missing and installs what it needs.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
TORCH  := torch==2.13.0

.PHONY: demo test lint bench soak install-service clean debs-runtime debs-test model

demo: $(VENV)/.installed debs-runtime
	$(PY) -m streamclf.demo

test: $(VENV)/.installed debs-test
	$(PY) -m pytest -q

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check streamclf trainer tests benchmarks scripts
	$(VENV)/bin/mypy

bench: $(VENV)/.installed debs-test
	$(PY) -m benchmarks.run_all --out benchmarks/RESULTS.md

soak: $(VENV)/.installed debs-test
	$(PY) -m benchmarks.soak

# REAL=DIR (an audiofolder) or REAL=google/speech_commands; default ../shared/data/speech_commands
model: $(VENV)/.installed debs-test
	scripts/build-default-model $(if $(REAL),--real $(REAL))

install-service: $(VENV)/.installed debs-runtime
	scripts/install-service

debs-runtime:
	@scripts/install-debs runtime

debs-test:
	@scripts/install-debs test

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q $(TORCH)
	$(PIP) install -q -e '.[train,dev,onnx,silero]'
	touch $@

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache

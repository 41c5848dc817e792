# Two commands set everything up on a fresh machine:
#   make demo   - train a small CNN on offline digits with and without mixing
#   make test   - lint, type-check, build the docs and run the whole test suite
#   make docs   - the documentation site into site/ (mkdocs --strict)
#   make notebooks - execute examples/*.ipynb at full size and store them with their outputs
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test test-deep mutants lint typecheck docs notebooks pytest bench floors clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(PY) examples/demo.py $(ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check lightning_mix tests examples bench docs/*.py noxfile.py
	$(VENV)/bin/ruff format --check lightning_mix tests examples bench docs/*.py noxfile.py

typecheck: $(STAMP)
	$(VENV)/bin/mypy

docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --quiet  # mkdocs is pinned to 1.6: the theme's 2.0 notice does not apply

notebooks: $(STAMP)
	OMP_NUM_THREADS=1 $(PY) examples/execute_notebooks.py $(ARGS)

pytest: $(STAMP)
	$(PY) -m pytest -n 2 $(ARGS)

test: lint typecheck docs pytest

# By hand, not in CI: 2000 freshly drawn examples of every hypothesis property
test-deep: $(STAMP)
	HYPOTHESIS_PROFILE=deep $(PY) -m pytest -n 2 -p no:cacheprovider tests/test_functional_properties.py \
		tests/test_functional_ints.py tests/test_functional_dense.py tests/test_loss.py tests/test_metrics.py $(ARGS)

# By hand, not in CI: mutation testing of the kernels and the callback ([tool.mutmut] in pyproject.toml; hours on
# 2 cores, about 9 mutants a minute). Lists the mutants no test kills; `$(VENV)/bin/mutmut show NAME` prints one.
mutants: $(STAMP)
	CI=1 OMP_NUM_THREADS=1 nice -n 10 $(VENV)/bin/mutmut run --max-children 2 $(ARGS); \
		$(VENV)/bin/mutmut results

bench: $(STAMP)
	$(PY) -m pip install kornia
	PY=$(PY) sh bench/run_all.sh $(ARGS)

# The suite on the oldest versions pyproject.toml claims and on the current pins (by hand, not CI; downloads GBs).
floors: $(STAMP)
	PATH="$$(ls -d $$HOME/.pyenv/versions/*/bin 2>/dev/null | tr '\n' ':')$$PATH" $(VENV)/bin/nox $(ARGS)

clean:
	rm -rf $(VENV) .nox .pytest_cache .mypy_cache .ruff_cache .hypothesis site mutants

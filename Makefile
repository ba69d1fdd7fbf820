# make reproduce   set up .venv and run the main job (the toy-world reproduction)
# make test        set up .venv with the test tools and run the linter and the whole test suite (notebooks included, smoke mode)
# make test-fast   the same without the slow tests (training, notebooks, the browser, the wheel): a few minutes
# make world       ship the toy world anew (calirl_lite/prebuilt/): after a change to the world's code or settings
# make lowest      the oldest versions pyproject.toml allows, installed into .venv-lowest and tested
# make dist        build the wheel and the sdist into dist/ and check them (twine check)
# make notebook-cells  write the shared cells (Colab badge, install cell, PROFILE) into every notebook
# make site        the notebooks executed in class mode, as HTML pages with their figures: results/site/index.html
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.calirl-installed
DEV_STAMP := $(VENV)/.calirl-dev-installed

.PHONY: setup reproduce test test-fast world lowest dist notebook-cells site clean-results

$(STAMP): requirements.txt pyproject.toml scripts/setup.sh
	bash scripts/setup.sh $(VENV)
	touch $(STAMP)

$(DEV_STAMP): $(STAMP) requirements-dev.txt
	$(BIN)/python -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	touch $(DEV_STAMP)

setup: $(STAMP)

reproduce: $(STAMP)
	$(BIN)/calirl reproduce

test: $(DEV_STAMP)
	bash scripts/browser.sh
	$(BIN)/ruff check calirl_lite tests scripts conftest.py
	CALIRL_SMOKE=1 $(BIN)/python -m pytest -n 2 --dist loadfile --nbmake tests notebooks

test-fast: $(DEV_STAMP)
	$(BIN)/ruff check calirl_lite tests scripts conftest.py
	CALIRL_SMOKE=1 $(BIN)/python -m pytest -n 2 --dist loadfile -m "not slow" tests

site: $(STAMP)
	CALIRL_CLASS=1 $(BIN)/calirl notebooks --out results/site-run
	$(BIN)/calirl site --executed results/site-run/notebooks --out results/site

world: $(STAMP)
	$(BIN)/python scripts/ship_world.py

lowest:
	python3 scripts/lowest.py

dist: $(DEV_STAMP)
	rm -rf dist
	$(BIN)/python -m build --outdir dist .
	$(BIN)/twine check --strict dist/*

notebook-cells: $(STAMP)
	$(BIN)/python scripts/notebook_cells.py

clean-results:
	rm -rf results

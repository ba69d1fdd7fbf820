# make reproduce   set up .venv and run the main job (the toy-world reproduction)
# make test        set up .venv with the test tools and run the linter and the whole test suite (notebooks included, smoke mode)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.calirl-installed
DEV_STAMP := $(VENV)/.calirl-dev-installed

.PHONY: setup reproduce test clean-results

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
	$(BIN)/ruff check calirl_lite tests conftest.py
	CALIRL_SMOKE=1 $(BIN)/python -m pytest --nbmake tests notebooks

clean-results:
	rm -rf results

# make reproduce   set up .venv and run the main job (the toy-world reproduction)
# make test        set up .venv and run the whole test suite (notebooks included, smoke mode)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.calirl-installed

.PHONY: setup reproduce test clean-results

$(STAMP): requirements.txt pyproject.toml scripts/setup.sh
	bash scripts/setup.sh $(VENV)
	touch $(STAMP)

setup: $(STAMP)

reproduce: $(STAMP)
	$(BIN)/calirl reproduce

test: $(STAMP)
	bash scripts/browser.sh
	CALIRL_SMOKE=1 $(BIN)/python -m pytest --nbmake tests notebooks

clean-results:
	rm -rf results

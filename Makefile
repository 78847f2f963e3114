# The two commands of the README. Both set everything up on a fresh machine (Python 3.11+, make).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: example test install-dev clean

# Set up, then run the main job on the bundled example WARCs and check the output.
example: $(BIN)/omnicorpus
	$(BIN)/omnicorpus run --config example --input examples/ --output out/example
	$(BIN)/omnicorpus validate out/example
	$(BIN)/omnicorpus show out/example --limit 1 --width 100 | head -n 40

# Set up with the development and trainer extras, then run the whole test suite.
test: install-dev
	$(BIN)/python -m pytest

$(BIN)/omnicorpus: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip   # an old pip breaks trafilatura's install
	$(BIN)/python -m pip install --quiet -e .
	touch $@

install-dev: $(BIN)/omnicorpus
	$(BIN)/python -m pip install --quiet -e ".[dev,train]"

clean:
	rm -rf out/ .pytest_cache

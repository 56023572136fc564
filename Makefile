PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test test-trainers lint bench clean docs

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: install
	rm -rf sample_out
	$(BIN)/kpmerge run sample_data/recipe.toml --force
	$(BIN)/kpmerge inspect sample_out

test: install
	$(BIN)/python -m pytest

docs: install
	$(BIN)/cog -r docs/commands.md
	$(BIN)/kpmerge run sample_data/recipe.toml -o sample_out --force -q
	$(BIN)/kpmerge show sample_out -o docs/sheet.png --per-source 6 --cell 120 --force

# The real trainers on kpmerge's outputs, each in its own venv under KPMERGE_TRAINERS_CACHE (reused;
# rebuilt when tests/trainers/requirements-TOOL.txt changes). TRAINERS=mmpose runs one.
KPMERGE_TRAINERS_CACHE ?= $(HOME)/.cache/kpmerge/trainers
TRAINERS ?=

test-trainers:
	KPMERGE_TRAINERS_CACHE="$(KPMERGE_TRAINERS_CACHE)" PYTHON="$(PYTHON)" tests/trainers/run $(TRAINERS)

lint: install
	$(BIN)/ruff check kpmerge tests
	$(BIN)/ruff format --check kpmerge tests

clean:
	rm -rf $(VENV) sample_out .pytest_cache

SCALE ?= 1
RUNS ?= 3
BENCH_FLAGS ?=

bench: install
	$(BIN)/python -m kpmerge.bench --scale $(SCALE) --runs $(RUNS) --out bench_out/bench-x$(SCALE).json $(BENCH_FLAGS)

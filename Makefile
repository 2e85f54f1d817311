# geounet: `make demo` and `make test` do all set-up on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# torch/torchvision: pinned to the releases this project is developed and tested with.
TORCH  := torch==2.14.1 torchvision==0.29.1

.PHONY: all venv demo test lint format bench clean

all: test

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet $(TORCH)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/geounet demo --output demo_output

lint: $(STAMP)
	$(BIN)/ruff check geounet tests benchmarks
	$(BIN)/ruff format --check geounet tests benchmarks

format: $(STAMP)
	$(BIN)/ruff format geounet tests benchmarks
	$(BIN)/ruff check --fix geounet tests benchmarks

test: $(STAMP) lint
	$(BIN)/python -m pytest -q

# Figures for docs/: model zoo, training pipeline, scene inference (several minutes each).
bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	$(BIN)/python benchmarks/models.py
	$(BIN)/python benchmarks/train.py
	$(BIN)/python benchmarks/inference.py

clean:
	rm -rf $(VENV) demo_output .pytest_cache .ruff_cache

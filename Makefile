# geounet: `make demo` and `make test` do all set-up on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# torch/torchvision: pinned to the releases this project is developed and tested with.
TORCH  := torch==2.14.1 torchvision==0.29.1

.PHONY: all venv demo test lint format bench clean

all: test

# The venv takes about 6.5 GB (torch's CUDA libraries are 4 GB of it): say so before pip runs out of room.
# --no-cache-dir: no second copy of downloads. Bytecode is compiled at install: where
# PYTHONDONTWRITEBYTECODE is set (CI), imports would otherwise compile every module every time.
PIP    := $(BIN)/python -m pip install --quiet --no-cache-dir
NEED_MB := 7000

$(STAMP): pyproject.toml
	@free=$$(df -Pm . | awk 'NR==2 {print $$4}'); \
	if [ "$$free" -lt $(NEED_MB) ]; then \
		echo "make: warning: $$free MB free in $$(pwd); the venv needs about $(NEED_MB) MB" >&2; fi
	$(PYTHON) -m venv $(VENV)
	$(PIP) $(TORCH)
	$(PIP) -e '.[dev]'
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
	$(PIP) -e '.[dev,bench]'
	$(BIN)/python benchmarks/models.py
	$(BIN)/python benchmarks/train.py
	$(BIN)/python benchmarks/inference.py

clean:
	rm -rf $(VENV) demo_output .pytest_cache .ruff_cache

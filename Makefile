PY ?= .venv/bin/python
HADOLINT ?= $(dir $(PY))hadolint
# benchmarks/ is optional: lint it when it exists.
SRC := bot tests $(wildcard benchmarks)

.PHONY: install check fmt lint types test

install:
	python3 -m venv .venv && $(PY) -m pip install -q -e '.[dev]'

fmt:
	$(PY) -m ruff format $(SRC)

check:
	$(PY) -m ruff format --check $(SRC)
	$(PY) -m ruff check $(SRC)
	$(PY) -m mypy
	$(HADOLINT) Dockerfile
	$(PY) -m pytest -q

test:
	$(PY) -m pytest -q

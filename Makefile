PY ?= .venv/bin/python

.PHONY: install check fmt lint types test

install:
	python3 -m venv .venv && $(PY) -m pip install -q -e '.[dev]'

fmt:
	$(PY) -m ruff format bot tests benchmarks

check:
	$(PY) -m ruff format --check bot tests benchmarks
	$(PY) -m ruff check bot tests benchmarks
	$(PY) -m mypy
	$(PY) -m pytest -q

test:
	$(PY) -m pytest -q

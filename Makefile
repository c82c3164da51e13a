# make run: the embedded default stack on this machine.
# make test: every check and test. Both install what is missing first.
.PHONY: setup run test test-fast lint clean

VENV := .venv/bin

setup:
	./scripts/setup.sh

run: setup
	$(VENV)/kiosk run

lint: setup
	$(VENV)/ruff format --check .
	$(VENV)/ruff check .
	$(VENV)/mypy .

test: lint
	$(VENV)/pytest -q

test-fast: setup
	$(VENV)/pytest -q -m "not slow"

clean:
	rm -rf var build .pytest_cache .mypy_cache .ruff_cache

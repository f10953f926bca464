# The two commands a newcomer needs: `make run` and `make test`.
PY := .venv/bin/python
export PYTHONPATH := $(CURDIR)
export HF_HUB_OFFLINE := 1
export RASA_TELEMETRY_ENABLED := false

.PHONY: setup run serve test unit lint lock clean

setup:            ## build .venv (3.11) and .venv-rasa (3.10) from the lock files
	bash scripts/setup.sh

run: setup        ## set up, train what is missing, start everything, chat in the terminal
	$(PY) -m core.stack run

serve: setup      ## like run, without the terminal chat (REST on 127.0.0.1:5005)
	$(PY) -m core.stack run --no-chat

test: setup       ## lint, types, unit and integration tests (starts real services)
	$(PY) -m ruff check .
	$(PY) -m mypy
	$(PY) -m pytest -q

unit: setup       ## only the fast tests
	$(PY) -m pytest -q -m "not integration"

lint:
	$(PY) -m ruff check . && $(PY) -m ruff format --check . && $(PY) -m mypy

lock:             ## re-resolve requirements/main.txt into main.lock
	$(PY) -m pip freeze --exclude-editable | sed 's/+cpu$$//' > requirements/main.lock

clean:
	rm -rf var

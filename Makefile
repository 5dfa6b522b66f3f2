# Two commands matter (see README.md): `make run` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.txt | cksum | cut -d' ' -f1)
FLASK := $(BIN)/flask --app app

.PHONY: setup run test lint db demo tools audit

# pip compiles the installed modules one after another; compileall on every core does the same
# (as pip, a file that does not compile is left to be compiled, or fail, when imported): 34 + 13 s
# instead of 56 s here.
$(STAMP): requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --no-compile --disable-pip-version-check -r requirements.txt
	$(BIN)/python -m compileall -q -j 0 $(VENV)/lib >/dev/null || true
	rm -f $(VENV)/.installed-* && touch $(STAMP)

setup: $(STAMP)

# Test tools that are not Python (Prism for the Twilio contract test, axe-core for the browser
# tests), pinned in package-lock.json. Without npm the tests that need them skip (see README).
NPM_STAMP := node_modules/.installed-$(shell cat package-lock.json | cksum | cut -d' ' -f1)
$(NPM_STAMP): package-lock.json
	if command -v npm >/dev/null; then npm ci --no-audit --no-fund --loglevel=error && touch $(NPM_STAMP); fi

tools: $(NPM_STAMP)

db: setup
	$(FLASK) db upgrade

demo: db
	$(FLASK) demo load

# The web service, the scheduler and the message dispatcher, side by side, until Ctrl-C.
run: demo
	@echo "Krisrutin: http://127.0.0.1:5000 (Ctrl-C stops all three processes)"
	@# Ctrl-C reaches all three, but a background job of a non-interactive shell ignores SIGINT
	@# unless it handles it itself: the scheduler and the dispatcher do (a clean shutdown), the
	@# web server does not, so the trap ends it with SIGTERM. A SIGTERM to make ends all three.
	@trap 'trap - INT TERM; kill $$web 2>/dev/null; wait' INT; \
	trap 'trap - INT TERM; kill $$web $$workers 2>/dev/null; wait' TERM; \
	$(FLASK) scheduler run & workers="$$!"; \
	$(FLASK) dispatcher run & workers="$$workers $$!"; \
	$(FLASK) run --host 127.0.0.1 --port 5000 & web="$$!"; \
	wait

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Known vulnerabilities in the pinned dependencies (PyPI's advisory data; docs/security.md).
audit: setup
	$(BIN)/python -m tools.dependency_audit requirements.txt

# Two worker processes: this machine has two cores (see README, Tests). worksteal: a worker that
# runs out of tests takes half of the other's remaining ones, so a few long scenario tests at the
# end of one worker's share do not leave the other idle.
# Bytecode is written (__pycache__, ignored by git) even where the environment says not to
# (PYTHONDONTWRITEBYTECODE=1 on the development machines): the suite starts processes of the
# service (gunicorn, the dispatcher, the scheduler, the flask commands), and each compiled every
# module again; five files of such tests took 25.3 s instead of 19.9 s (README, Tests).
PYTEST_ARGS ?= -n 2 --dist worksteal
test: lint tools audit
	env -u PYTHONDONTWRITEBYTECODE $(BIN)/python -m pytest $(PYTEST_ARGS)

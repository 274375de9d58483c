# Two commands on a fresh machine: `make run` (the platform on the embedded default) and `make test`.
# Each installs what it lacks (tools, both Python environments, system packages, the trained model) and
# reuses it on the next run.

UV_VERSION := 0.13.8
UV := .tools/bin/uv
PLATFORM_STAMP := .venv/.synced
ENGINE_STAMP := .venv-engine/.synced
export UV_LINK_MODE := copy

.PHONY: run test test-fast lint bench model engine platform system-packages voice-packages engine-lock clean

run: platform engine model voice-packages
	.venv/bin/outreach serve

# Two workers (pytest-xdist; a test file stays on one worker, with its fixtures): the suite waits on engines,
# browsers and child processes as much as it computes. TEST_WORKERS=0 runs it in this process. The slowest tests
# are listed at the end: the full run must stay well inside CI's time.
TEST_WORKERS ?= 2
test: platform engine model system-packages voice-packages
	.venv/bin/python -m pytest -n $(TEST_WORKERS) --dist loadfile --durations=40 $(PYTEST_ARGS)

# The fast layer for developers (under a minute): pure code and SQLite in this process; no engine, no PostgreSQL, no
# browser, no child processes, no server. tests/conftest.py marks each test by the parts it uses.
test-fast: platform
	.venv/bin/python -m pytest -m "not engine and not postgres and not browser and not processes and not served" $(PYTEST_ARGS)

bench: platform engine model system-packages voice-packages
	.venv/bin/python scripts/bench.py $(BENCH_ARGS)
	.venv/bin/python scripts/bench_console.py $(BENCH_CONSOLE_ARGS)
	.venv/bin/python scripts/bench_campaigns.py $(BENCH_CAMPAIGN_ARGS)
	.venv/bin/python scripts/bench_voice.py $(BENCH_VOICE_ARGS)
	.venv/bin/python scripts/bench_tracing.py $(BENCH_TRACING_ARGS)

lint: platform
	.venv/bin/ruff check . && .venv/bin/ruff format --check . && .venv/bin/lint-imports --no-cache --no-logo

model: platform engine
	@.venv/bin/outreach engine train

platform: $(PLATFORM_STAMP)
engine: $(ENGINE_STAMP)

$(UV):
	python3 -m venv .tools
	.tools/bin/pip install --quiet uv==$(UV_VERSION)

$(PLATFORM_STAMP): pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --extra viet-asr --python "$$(scripts/find-python platform)"
	touch $@

$(ENGINE_STAMP): bot/engine-requirements.lock | $(UV)
	@python=$$(scripts/find-python engine) && \
	  { [ -x .venv-engine/bin/python ] || $(UV) venv --quiet --python "$$python" .venv-engine; }
	$(UV) pip sync --python .venv-engine/bin/python bot/engine-requirements.lock
	touch $@

# Debian packages the tests use: a PostgreSQL 15 server, docker-compose (to validate the compose file), Chromium (the
# chat page is tested in a real browser) and Java (the F1 derivation is checked on Spark in local mode).
system-packages:
	@missing=""; \
	  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	  command -v docker-compose >/dev/null || missing="$$missing docker-compose"; \
	  command -v chromium >/dev/null || missing="$$missing chromium"; \
	  command -v java >/dev/null || missing="$$missing default-jre-headless"; \
	  if [ -n "$$missing" ]; then \
	    echo "installing Debian packages:$$missing"; \
	    $$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive $$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get install -y -qq $$missing >/dev/null; \
	  fi

# espeak-ng speaks the voice prompts when Google's speech synthesis (gTTS) cannot be reached.
voice-packages:
	@command -v espeak-ng >/dev/null || { \
	  echo "installing Debian packages: espeak-ng"; \
	  $$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get install -y -qq espeak-ng >/dev/null; }

engine-lock: | $(UV)
	$(UV) pip compile --quiet --python-version 3.10 bot/engine-requirements.in -o bot/engine-requirements.lock

clean:
	rm -rf .venv .venv-engine .tools var/engine-models

# The README's two commands. Each creates .venv when missing and installs the project into it;
# the stamp file makes a second install a no-op until pyproject.toml changes.
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
LLAMA  := $(VENV)/.llama-stamp
export PYGAME_HIDE_SUPPORT_PROMPT := 1

.PHONY: install test demo lint clean chromium

# llama-cpp-python from a wheel built for this host's CPU without AMX code (tools/llama_wheel.py),
# cached outside the tree under a key of its build flags, so a second clone builds nothing.
$(LLAMA): tools/llama_wheel.py pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	wheel=$$($(PY) tools/llama_wheel.py) && \
		$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --force-reinstall "$$wheel"
	@touch $(LLAMA)

$(STAMP): pyproject.toml $(LLAMA)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check .

# Headless Chromium (Debian's package) for the report viewer's browser tests.
chromium:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" -eq 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium; }

test: $(STAMP) chromium
	$(VENV)/bin/ruff check .
	$(VENV)/bin/pytest

demo: $(STAMP)
	$(VENV)/bin/coopbench matrix benchmarks/quick.yaml --out results/runs/quick

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache

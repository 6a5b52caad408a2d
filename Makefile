# Two commands do everything on a fresh machine: `make run` and `make test`.
# PyTorch comes first and CPU-only. On machines whose pip does not already serve the CPU build, point
# TORCH_INDEX at PyTorch's CPU wheel index, e.g. `make run TORCH_INDEX=https://download.pytorch.org/whl/cpu`.
PYTHON ?= python3
VENV ?= .venv
TORCH_VERSION ?= 2.13.0
TORCH_INDEX ?=
HOST ?= 127.0.0.1
PORT ?= 5000
WORKERS ?= 2
BIN := $(VENV)/bin
TORCH_INDEX_FLAG := $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX),)

.PHONY: install install-test run build serve test test-fast lint bench clean browser-deps system-deps ocr-deps

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# `make run` installs what running needs; `make test` adds the test tools and the Milvus and Ray extras.
$(VENV)/.installed: $(BIN)/python pyproject.toml
	@$(MAKE) --no-print-directory system-deps
	$(BIN)/pip install --quiet "torch==$(TORCH_VERSION)" $(TORCH_INDEX_FLAG)
	$(BIN)/pip install --quiet -e . "torch==$(TORCH_VERSION)" $(TORCH_INDEX_FLAG:--index-url=--extra-index-url)
	touch $@

# Every later install names torch again, so that pip fails rather than swap it for another build.
$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/pip install --quiet -e ".[test,milvus,ray]" "torch==$(TORCH_VERSION)" $(TORCH_INDEX_FLAG:--index-url=--extra-index-url)
	touch $@

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

build: install ocr-deps
	$(BIN)/personae build

serve: install
	$(BIN)/personae serve --host $(HOST) --port $(PORT) --workers $(WORKERS)

run: build serve

# PyICU (for normality: name transliteration) has no wheel: pip builds it against libicu-dev.
system-deps:
	@if ! pkg-config --exists icu-uc 2>/dev/null; then \
		if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libicu-dev pkg-config >/dev/null; \
		else echo "error: PyICU needs libicu-dev and pkg-config (apt-get install libicu-dev pkg-config)" >&2; exit 1; fi; fi

# OCR of scanned PDF pages needs Debian's tesseract-ocr. Optional when running (without it such pages are
# reported, not indexed); installed here when missing and apt is usable. The tests need it.
ocr-deps:
	@if ! command -v tesseract >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tesseract-ocr >/dev/null) \
		|| echo "warning: could not install tesseract-ocr; scanned PDF pages will not be OCR'd"; fi

# Browser tests need Debian's chromium + chromium-driver; installed here when missing and apt is usable.
browser-deps:
	@if ! command -v chromedriver >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null) \
		|| echo "warning: could not install chromium; browser tests will be skipped"; fi

test: install-test browser-deps ocr-deps
	$(BIN)/python -m pytest

test-fast: install-test ocr-deps
	$(BIN)/python -m pytest -m "not slow"

lint: install-test
	$(BIN)/ruff check .

bench: install-test
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) var .pytest_cache

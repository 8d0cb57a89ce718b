# cachee -- the developer's front door.  `make` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

CC        ?= gcc
GO        ?= go
L0_SRC    := $(wildcard core/l0/*.c)
L0_HDR    := include/cachee_l0.h $(wildcard core/l0/*.h)
CWARN     := -std=gnu11 -Wall -Wextra -Werror -fvisibility=hidden
CSAN      := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
CINC      := -Iinclude -Icore/l0
CTEST_BIN := tests/c/bin
CTESTS    := $(patsubst tests/c/%.c,$(CTEST_BIN)/%,$(wildcard tests/c/test_*.c))
FUZZTIME  ?= 20s

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | \
	  awk 'BEGIN {FS = ":.*## "}; {printf "  %-14s %s\n", $$1, $$2}'

.PHONY: deps
deps: ## install system packages the build needs (apt-get, as root)
	@bash tools/install-deps.sh

PYTHON    ?= python3
VENV      := .venv
PY        := $(VENV)/bin/python

.PHONY: test
test: deps test-c test-go test-capi test-python test-torture test-install bench-build test-bench ## every suite: C (ASan/UBSan), Go (-race, fuzz), Python (plain and sanitized), short torture, the benchmarks' helpers

$(VENV)/.ready: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "numpy>=1.23" "pytest>=7" "gunicorn>=21" "setuptools>=77" wheel
	@touch $@

.PHONY: venv
venv: $(VENV)/.ready ## create .venv with what the Python side needs

.PHONY: build
build: deps venv ## build the extension in place (python/cachee/_cachee*.so)
	$(PY) setup.py -q build_ext --inplace

.PHONY: test-python
test-python: deps venv ## Python suite, then again under the ASan/UBSan build
	PYTHON=$(PY) bash tests/python/run.sh --sanitize

.PHONY: test-torture
test-torture: build ## the torture harness, short (~40 s of kills and soak), as pytest
	PYTHONPATH=python $(PY) -m pytest -q tests/torture

.PHONY: torture
torture: build ## torture harness: 3 min of SIGKILLs + 1 min soak (TORTURE_ARGS=--minutes 10 ...)
	PYTHON=$(PY) bash tests/torture/run.sh $(TORTURE_ARGS)

.PHONY: test-install
test-install: venv ## `pip` can build the package from this tree (isolated build)
	rm -rf build/wheel
	$(PY) -m pip wheel -q --no-deps -w build/wheel .
	@ls build/wheel/cachee-*.whl
	@if command -v $(GO) >/dev/null; then $(PY) -c "import glob, sys, zipfile; \
	  n = zipfile.ZipFile(glob.glob('build/wheel/cachee-*.whl')[0]).namelist(); \
	  sys.exit(0 if 'cachee/libcachee.so' in n else 'the wheel lacks cachee/libcachee.so')" \
	  && echo "wheel ships cachee/libcachee.so"; fi

.PHONY: bench-build
bench-build: ## the C benchmarks still compile
	@mkdir -p build/bench
	@for f in bench/l0/*.c; do $(CC) $(CWARN) -O2 $(CINC) $$f $(L0_SRC) -o build/bench/$$(basename $$f .c) -lpthread -lm || exit 1; done
	@echo "bench: C programs build"

.PHONY: test-bench
test-bench: deps ## the benchmarks' own helpers (statistics, goals, plots), without timing
	PYTHONPATH=bench/python $(PY) -m pytest -q bench/python

.PHONY: demo
demo: build ## the main job: workers sharing one copy of 200k embeddings (memory table)
	PYTHONPATH=python $(PY) -m cachee.demo

$(CTEST_BIN)/%: tests/c/%.c tests/c/l0test.h tests/c/l0util.h $(L0_SRC) $(L0_HDR)
	@mkdir -p $(CTEST_BIN)
	$(CC) $(CWARN) $(CSAN) $(CINC) -DL0_TEST_POINTS $< $(L0_SRC) -o $@ -lpthread

.PHONY: test-c
test-c: $(CTESTS) ## C unit, multi-process and crash tests under ASan/UBSan
	@bash tests/c/run.sh $(CTESTS)

.PHONY: lib
lib: ## build/libcachee.so (the Go core's C ABI) and check its symbols against include/cachee.h
	@mkdir -p build
	$(GO) build -buildmode=c-shared -o build/libcachee.so ./capi
	@$(CC) $(CWARN) -fsyntax-only -x c include/cachee.h
	@hdr=$$(grep -oE '^(int|void|int64_t) cachee_[a-z_]+\(' include/cachee.h | grep -oE 'cachee_[a-z_]+' | sort -u); \
	 so=$$(nm -D --defined-only build/libcachee.so | awk '$$2 == "T" {print $$3}' | grep -E '^cachee_' | sort -u); \
	 if [ "$$hdr" != "$$so" ]; then echo "lib: include/cachee.h and build/libcachee.so disagree:"; \
	   diff <(echo "$$hdr") <(echo "$$so"); exit 1; fi; \
	 echo "lib: build/libcachee.so exports the $$(echo "$$hdr" | wc -l) functions of include/cachee.h"

.PHONY: test-capi
test-capi: lib ## C ABI: tests/capi (C, dlopen of build/libcachee.so) and the Go helper tests
	$(CC) $(CWARN) -O1 -g $(CINC) -Itests/c tests/capi/test_capi.c $(L0_SRC) -o build/test_capi -lpthread -ldl
	LIBCACHEE=build/libcachee.so build/test_capi
	$(GO) test -race -count=1 ./capi/...

.PHONY: bench-tiers
bench-tiers: lib ## tier benchmarks: a read through libcachee (L0 vs L1 hit), L0+L1 hit ratio at equal memory
	$(CC) $(CWARN) -O2 $(CINC) bench/tiers/abi_hit.c $(L0_SRC) -o build/bench_abi_hit -lpthread -ldl
	build/bench_abi_hit build/libcachee.so
	$(GO) run ./bench/tiers/promote

# make test fuzzes a fixed number of inputs per target, never for a time:
# Go 1.26's fuzz coordinator can fail a clean run at the end of a time budget
# ("context deadline exceeded", golang/go#75804).  `make fuzz` explores longer.
FUZZ_EXECS ?= 3000x

.PHONY: test-go
test-go: ## Go tests with -race, then every fuzz target for FUZZ_EXECS inputs (3000x)
	$(GO) vet ./...
	$(GO) test -race -count=1 ./...
	@bash tools/fuzz.sh $(FUZZ_EXECS)

.PHONY: fuzz
fuzz: ## run each fuzz target for FUZZTIME (default 20s)
	@bash tools/fuzz.sh $(FUZZTIME)

.PHONY: bench
bench: build ## benchmarks that print numbers (L0 from Go and C, scaling, hit ratio)
	@bash bench/run.sh

.PHONY: bench-quick
bench-quick: build ## the same benchmarks, short (about two minutes), with the peers of bench/requirements.txt
	@$(PY) -m pip install -q -r bench/requirements.txt || \
	  echo "bench-quick: could not install bench/requirements.txt; those peers are reported as missing"
	@bash bench/run.sh --quick

# Lint tools are pinned: a run today and a run next month check the same rules.
STATICCHECK_VERSION := v0.8.2
STATICCHECK = $$($(GO) env GOPATH)/bin/staticcheck

.PHONY: lint
lint: ## go vet, staticcheck, gofmt, C with -Werror, the cross-language tables agree
	@$(PYTHON) tools/check_tables.py
	$(GO) vet ./...
	@v=$$($(STATICCHECK) -version 2>/dev/null); case "$$v" in *"($(STATICCHECK_VERSION:v%=%))"*) ;; \
	  *) echo "lint: installing staticcheck $(STATICCHECK_VERSION)"; \
	     $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) || exit 1;; esac
	$(STATICCHECK) ./...
	@test -z "$$(gofmt -l core capi examples bench 2>/dev/null)" || { gofmt -l core capi examples bench; exit 1; }
	@for f in $(L0_SRC); do $(CC) $(CWARN) -O2 $(CINC) -c $$f -o /dev/null || exit 1; done; echo "C: clean"

.PHONY: clean
clean: ## remove build outputs (keeps .venv)
	rm -rf $(CTEST_BIN) build dist python/cachee/*.so python/*.egg-info
	$(GO) clean -testcache

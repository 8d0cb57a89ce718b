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

.PHONY: test
test: deps test-c test-go ## run every test suite (C under ASan/UBSan, Go with -race, fuzz seeds)

$(CTEST_BIN)/%: tests/c/%.c tests/c/l0test.h tests/c/l0util.h $(L0_SRC) $(L0_HDR)
	@mkdir -p $(CTEST_BIN)
	$(CC) $(CWARN) $(CSAN) $(CINC) $< $(L0_SRC) -o $@ -lpthread

.PHONY: test-c
test-c: $(CTESTS) ## C unit, multi-process and crash tests under ASan/UBSan
	@bash tests/c/run.sh $(CTESTS)

.PHONY: test-go
test-go: ## Go tests with -race, then each fuzz target briefly
	$(GO) vet ./...
	$(GO) test -race -count=1 ./...
	@bash tools/fuzz.sh 5s

.PHONY: fuzz
fuzz: ## run each fuzz target for FUZZTIME (default 20s)
	@bash tools/fuzz.sh $(FUZZTIME)

.PHONY: bench
bench: deps ## benchmarks that print numbers (L0 from Go and C, scaling, hit ratio)
	@bash bench/run.sh

.PHONY: lint
lint: ## go vet, staticcheck, gofmt, C with -Werror
	$(GO) vet ./...
	@command -v staticcheck >/dev/null || $(GO) install honnef.co/go/tools/cmd/staticcheck@latest
	$$( $(GO) env GOPATH )/bin/staticcheck ./...
	@test -z "$$(gofmt -l core bench 2>/dev/null)" || { gofmt -l core bench; exit 1; }
	@for f in $(L0_SRC); do $(CC) $(CWARN) -O2 $(CINC) -c $$f -o /dev/null || exit 1; done; echo "C: clean"

.PHONY: clean
clean: ## remove build outputs
	rm -rf $(CTEST_BIN) build dist
	$(GO) clean -testcache

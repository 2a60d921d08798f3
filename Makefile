# dewy-agent. `make demo` shows the agent deploying; `make test` runs every test.
GO      ?= go
BIN     := bin/dewy-agent
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)

.PHONY: build test test-short lint demo bench clean

build: ## build bin/dewy-agent
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/dewy-agent

test: ## every test, with the race detector (Docker tests skip when no engine runs)
	$(GO) test -race -count=1 -timeout 15m ./...

test-short: ## the quick loop: skips the slow end-to-end tests
	$(GO) test -short -count=1 ./...

lint: ## gofmt and go vet
	@test -z "$$(gofmt -l .)" || { echo "gofmt would change:"; gofmt -l .; exit 1; }
	$(GO) vet ./...

demo: build ## publish a site to a local registry, run the agent, publish an update, watch it deploy
	$(GO) run ./examples/demo -agent $(BIN) -config examples/demo.hcl

bench: build ## the benchmarks recorded in docs/benchmarks.md
	$(GO) test -run '^$$' -bench . -benchmem ./sources/version/ ./releasestore/
	$(GO) test -run '^$$' -bench 'Reload200|IdlePollCost' -benchtime 10x ./agent/
	$(GO) run ./bench/bigartifact
	$(GO) run ./bench/idlemem -agent $(BIN)
	$(GO) run ./bench/zerodowntime
	$(GO) run ./bench/rolling

clean:
	rm -rf bin

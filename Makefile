# dewy-agent. `make demo` shows the agent deploying; `make test` runs every test.
GO      ?= go
BIN     := bin/dewy-agent
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
DATE    ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
LDFLAGS := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT) -X main.date=$(DATE)
# Package versions must start with a digit: v1.2.3 -> 1.2.3; an untagged tree is 0.0.0~<commit>.
PKGVERSION ?= $(or $(shell echo '$(VERSION)' | sed -n 's/^v\{0,1\}\([0-9][0-9]*\.[0-9][0-9]*\.[0-9].*\)$$/\1/p'),0.0.0~$(COMMIT))
DIST    := dist
PLATFORMS := linux/amd64 linux/arm64 darwin/amd64 darwin/arm64

.PHONY: build test test-short lint dups demo fleet-demo bench soak package dist clean

build: ## build bin/dewy-agent
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/dewy-agent

test: ## every test, with the race detector (Docker tests skip when no engine runs)
	$(GO) test -race -count=1 -timeout 15m ./...

test-short: ## the quick loop: skips the slow end-to-end tests
	$(GO) test -short -count=1 ./...

lint: ## gofmt, go vet, and a macOS build (make dist ships one)
	@test -z "$$(gofmt -l .)" || { echo "gofmt would change:"; gofmt -l .; exit 1; }
	$(GO) vet ./...
	GOOS=darwin $(GO) build -o /dev/null ./cmd/dewy-agent

dups: ## repeated code, as the duplicates tool lists it with Go import blocks passed over (needs duplicates on PATH)
	scripts/dups

soak: ## crash consistency: kill -9 the agent at 60 random moments across deploys (not in CI; the normal run makes 4)
	DEWY_SOAK_KILLS=60 $(GO) test -count=1 -timeout 30m -run 'TestCrashSoak' -v ./cmd/dewy-agent/

demo: build ## publish a site to a local registry, run the agent, publish an update, watch it deploy
	$(GO) run ./examples/demo -agent $(BIN) -config examples/demo.hcl

fleet-demo: build ## embedded etcd and five agents: a release rolls out canary -> bake -> waves; a bad one stops at the canary
	$(GO) run ./examples/fleet -agent $(BIN)

bench: build ## the benchmarks recorded in docs/benchmarks.md
	$(GO) test -run '^$$' -bench . -benchmem ./sources/version/ ./releasestore/
	$(GO) test -run '^$$' -bench 'Reload200|IdlePollCost' -benchtime 10x ./agent/
	$(GO) run ./bench/bigartifact
	$(GO) run ./bench/idlemem -agent $(BIN)
	$(GO) run ./bench/manyapps -agent $(BIN)
	$(GO) run ./bench/zerodowntime
	$(GO) run ./bench/zerodowntime -conns 8 -deploys 10
	$(GO) run ./bench/zerodowntime -conns 8 -deploys 10 -proxy
	$(GO) run ./bench/agentcrash -agent $(BIN)
	$(GO) run ./bench/rolling

package: ## build the .deb and .rpm for this machine's architecture into dist/ (nfpm)
	@mkdir -p $(DIST)/pkg
	CGO_ENABLED=0 GOOS=linux $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(DIST)/pkg/dewy-agent ./cmd/dewy-agent
	for p in deb rpm; do \
	  VERSION=$(PKGVERSION) ARCH=$$($(GO) env GOARCH) \
	    $(GO) tool nfpm pkg --packager $$p --config packaging/nfpm.yaml --target $(DIST)/ || exit 1; \
	done

dist: ## release archives per OS/arch with SHA256SUMS, in the layout dewy-agent selects from
	@rm -rf $(DIST)/release && mkdir -p $(DIST)/release
	for p in $(PLATFORMS); do \
	  os=$${p%/*}; arch=$${p#*/}; d=$(DIST)/release/dewy-agent_$(VERSION)_$${os}_$${arch}; \
	  mkdir -p $$d && cp README.md dewy.hcl.example $$d/ && \
	  CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $$d/dewy-agent ./cmd/dewy-agent && \
	  tar -C $$d -czf $$d.tar.gz . && rm -rf $$d || exit 1; \
	done
	cd $(DIST)/release && sha256sum *.tar.gz > SHA256SUMS

clean:
	rm -rf bin $(DIST)

# Each fuzz target for FUZZTIME (a minute by default); the seed corpora run in
# every `go test`. See docs/reliability.md.
FUZZTIME ?= 1m
# Every `func Fuzz...` in a _test.go file, as "./pkg:FuzzName", found anew
# each run so that no target is left out.
FUZZ_TARGETS = $(shell grep -rn --include='*_test.go' '^func Fuzz' . | sed -E 's|^(.*)/[^/]*:[0-9]+:func (Fuzz[A-Za-z0-9_]*).*|\1:\2|' | sort)

.PHONY: fuzz
fuzz: ## run every fuzz target for FUZZTIME (1m)
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; fn=$${t##*:}; \
		echo "== $$pkg $$fn"; \
		$(GO) test -run '^$$' -fuzz "^$$fn$$" -fuzztime $(FUZZTIME) $$pkg; \
	done

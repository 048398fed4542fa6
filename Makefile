# Samsa — the two commands are `make run` and `make test`.
GO        ?= go
BIN       ?= bin/samsa
FUZZTIME  ?= 15s
BENCHTIME ?= 1s
STATICCHECK = honnef.co/go/tools/cmd/staticcheck@v0.7.0

# Packages whose tests run with the race detector (the core), and the rest.
CORE_PKGS  = ./log/... ./connectors/... ./transforms/... ./pipelines/...
OTHER_PKGS = $(shell $(GO) list ./... | grep -v -e '/log/' -e '/connectors' -e '/transforms' -e '/pipelines')

.PHONY: build run cluster test test-integration bench bench-storage bench-replication bench-cluster bench-kafka bench-pipelines fuzz lint fmt clean

build: ## build bin/samsa
	$(GO) build -o $(BIN) ./cmd/samsa

run: build ## the main job on the embedded default: one node (./data) running the quickstart pipeline
	./$(BIN) run examples/quickstart/pipeline.yaml --data-dir ./data

cluster: build ## a local three-node cluster (Kafka on 127.0.0.1:9092-9094, data under ./data/cluster)
	./$(BIN) dev cluster --nodes 3 --data-dir ./data/cluster

test: ## unit and in-process tests; race detector on the core packages
	$(GO) test -race -count=1 -timeout 15m $(CORE_PKGS)
	$(GO) test -count=1 -timeout 15m $(OTHER_PKGS)

test-integration: ## service-backed tests; needs the SAMSA_TEST_* variables that .ci/run exports
	SAMSA_TEST_REQUIRE_SERVICES=1 $(GO) test -count=1 -timeout 30m -run 'Integration' ./...

bench: ## every Go benchmark once, with allocations
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) ./...

bench-storage: ## append throughput beside dd on the same disk, median of several runs
	scripts/bench-storage.sh

bench-replication: ## replicated append (RF 1, RF 3; pebble, tan) beside the storage engine
	scripts/bench-replication.sh

bench-cluster: ## produce and consume on a local three-node cluster, RF 1 beside RF 3
	scripts/bench-cluster.sh

bench-kafka: ## Kafka produce/consume beside kfake and NATS JetStream, and the protocol overhead
	scripts/bench-kafka.sh

bench-pipelines: ## the quickstart's pipeline shape beside Benthos alone; end-to-end latency
	scripts/bench-pipelines.sh

fuzz: ## each fuzz target for FUZZTIME
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "== $$pkg $$f ($(FUZZTIME))"; \
	    $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done

lint: ## go vet and staticcheck (pinned)
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

fmt: ## gofmt every Go file
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf bin

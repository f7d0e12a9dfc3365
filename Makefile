# meshpulse — the two commands a newcomer needs:
#   make demo   build and run the embedded stack with simulated domains
#   make test   install what the tests need, start it, run every test
SHELL := /bin/bash
GO ?= go
BIN := bin/meshpulse

.PHONY: web-vendor build demo deps test test-apache test-chdb test-cluster validate-deployments unit race vet fmt-check bench chaos fuzz clean

build:
	$(GO) build -o $(BIN) ./cmd/meshpulse
	$(GO) build -o bin/ingestor ./cmd/ingestor
	$(GO) build -o bin/scorer ./cmd/scorer
	$(GO) build -o bin/openlineage ./cmd/openlineage
	$(GO) build -o bin/catalog ./cmd/catalog

# The catalog's front-end libraries, from npm, committed (go build never runs npm).
web-vendor:
	scripts/web-vendor

# Installs clickhouse-server and kcat from Debian when missing.
deps:
	scripts/install-deps

demo: deps build
	$(BIN) dev -demo

# Everything: formatting, vet, unit and integration tests (a private
# ClickHouse is started by the tests themselves), the race detector on the
# concurrent packages.
test: deps fmt-check vet
	CI=$${CI:-true} $(GO) test -count=1 -timeout 20m ./...
	scripts/fuzz 10s
	CI=$${CI:-true} $(GO) test -count=1 -race -timeout 20m ./internal/ingest/... ./pkg/events/... ./internal/emit/... ./internal/scorer/... ./pkg/lineage/... ./internal/watch/... ./internal/catalog/... ./internal/openlineage/...

# The same integration suite against a real Apache Kafka 4.x broker (KRaft,
# assembled from Maven Central by scripts/kafka-up, cached in ~/.cache). The
# tests share the broker, so packages run one at a time (-p 1).
ifndef KAFKA_DIR
KAFKA_DIR := $(shell mktemp -d -u /tmp/meshpulse-kafka-XXXXXX)
endif
test-apache: deps
	scripts/kafka-up start $(KAFKA_DIR)
	set -a; . $(KAFKA_DIR)/env; set +a; \
	CI=$${CI:-true} MESHPULSE_TEST_KAFKA=apache MESHPULSE_TEST_KAFKA_BROKERS=$$BROKERS \
	  $(GO) test -p 1 -count=1 -v -timeout 30m ./... > $(KAFKA_DIR)/test.log 2>&1; rc=$$?; \
	grep -E '^(--- |ok|FAIL|PASS)|produced=|panic:' $(KAFKA_DIR)/test.log | grep -v '^    --- PASS'; \
	if [ $$rc -ne 0 ]; then echo "== last 200 lines of $(KAFKA_DIR)/test.log =="; tail -n 200 $(KAFKA_DIR)/test.log; fi; \
	scripts/kafka-up stop $(KAFKA_DIR); exit $$rc

# Migrations, every scorer query and every README query on a current
# ClickHouse engine (chDB, libchdb.so from npm, cached in ~/.cache) against
# the same data as the 18.16 server, with equal results.
test-chdb: deps
	CHDB_LIB_PATH=$$(scripts/install-chdb) CI=$${CI:-true} \
	  $(GO) test -tags chdb -count=1 -run 'CurrentClickHouse' -v -timeout 10m ./internal/devstack/ | grep -E '^(---|ok|FAIL|PASS)|chDB|differs'; \
	  exit $${PIPESTATUS[0]}

# Past one machine, on loopback: the clustered schema on a real ClickHouse
# cluster (two shards of two replicas of clickhouse-server and ZooKeeper
# from Maven Central, cached in ~/.cache, started by
# scripts/clickhouse-cluster) and Apache Kafka with three brokers
# (scripts/kafka-up --brokers 3); the tests kill and restart servers and
# brokers (internal/cluster, figures on lines starting CLUSTER).
ifndef CLUSTER_DIR
CLUSTER_DIR := $(shell mktemp -d -u /tmp/meshpulse-chcluster-XXXXXX)
endif
test-cluster: deps
	scripts/clickhouse-cluster start $(CLUSTER_DIR)
	scripts/kafka-up start $(CLUSTER_DIR)/kafka --brokers 3 || { scripts/clickhouse-cluster stop $(CLUSTER_DIR); exit 1; }
	CI=$${CI:-true} MESHPULSE_TEST_CLUSTER=$(CLUSTER_DIR) MESHPULSE_TEST_KAFKA3=$(CLUSTER_DIR)/kafka \
	  $(GO) test -tags cluster -count=1 -v -timeout 30m ./internal/cluster/ > $(CLUSTER_DIR)/test.log 2>&1; rc=$$?; \
	grep -E '^(--- |ok|FAIL|PASS|CLUSTER)|panic:' $(CLUSTER_DIR)/test.log; \
	if [ $$rc -ne 0 ]; then echo "== last 100 lines of $(CLUSTER_DIR)/test.log =="; tail -n 100 $(CLUSTER_DIR)/test.log; fi; \
	scripts/kafka-up stop $(CLUSTER_DIR)/kafka; scripts/clickhouse-cluster stop $(CLUSTER_DIR); exit $$rc

# docker-compose.yml against the Compose specification and the Kubernetes
# manifests against the k8s.io/api types (no Docker engine or cluster here).
validate-deployments:
	cd deployments/validate && $(GO) test -count=1 -v ./... | grep -E '^(---|ok|FAIL|PASS)|valid'; exit $${PIPESTATUS[0]}

unit:
	$(GO) test -short ./...

vet:
	$(GO) vet ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

# The chaos suite (RELIABILITY.md): ClickHouse stopped during rebalances,
# kill -9 in a loop, an Apache Kafka broker restarted, a registry outage,
# oversize poison, all at full size; then every fuzz target for 3 minutes.
chaos: deps
	CI=$${CI:-true} $(GO) test -tags chaos -count=1 -v -timeout 60m ./internal/chaos/ > chaos.log 2>&1; rc=$$?; \
	grep -E '^(--- |ok|FAIL|PASS|CHAOS)|panic:' chaos.log; \
	if [ $$rc -ne 0 ]; then tail -n 100 chaos.log; exit $$rc; fi
	scripts/fuzz 3m

# Every fuzz target briefly; the corpus found is kept in testdata/fuzz.
fuzz:
	scripts/fuzz 5s

bench: deps build
	$(BIN) bench ingest -events 1000000

clean:
	rm -rf bin .meshpulse

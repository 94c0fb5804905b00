# lanpeer: build, run and test. README.md explains each target.

GO        ?= go
BIN       := bin/lanpeer

# make fuzz: how long each fuzz target runs.
FUZZTIME  ?= 30s
# make bench: -benchtime (a duration, or Nx for N iterations).
BENCHTIME ?= 1s

# make test fuzzes these targets live (at most 5), LIVE_FUZZTIME each, after
# running every fuzz target over its seed corpus as a plain test. Each entry is
# PACKAGE:FuzzName; an entry that names no existing target fails the build.
# The five chosen are the decoders a stranger reaches before any
# authentication: frames, messages, the responder's handshake, multicast
# datagrams and directory registrations (docs/SECURITY.md lists them all).
LIVE_FUZZ     ?= ./framing:FuzzReadFrame ./wire:FuzzDecode ./session:FuzzResponder ./discovery:FuzzAnnounce ./directory:FuzzRegister
# A count, not a duration: Go 1.26's fuzz coordinator can fail a duration-bound
# run with a spurious "context deadline exceeded" when the time runs out while
# a worker is busy (go.dev/issue/75804, fixed in Go 1.27). 10000 executions
# take about 1-2 s here; -timeout bounds the time all the same.
LIVE_FUZZTIME ?= 10000x

# The MongoDB-wire server the store/mongo tests run against: FerretDB with
# its SQLite backend, built from the tools/ferretdb module (its own go.mod,
# so FerretDB never enters lanpeer's). The binary is cached here; go build
# is incremental, so only the first build takes minutes.
FERRETDB := $(CURDIR)/.tools/bin/ferretdb

.PHONY: build run test ferretdb fuzz bench lint clean

build:
	$(GO) build -o $(BIN) ./cmd/lanpeer

# Listen on 127.0.0.1:7700 (the identity is created on first run) and print
# the direct messages peers send; type @PEERID TEXT to answer. Ctrl-C stops it.
run: build
	$(BIN) listen

# FerretDB for the tests: started on a free loopback port with a fresh data
# directory unless LANPEER_TEST_MONGO_URI names a server already, and
# stopped when the tests end, pass or fail. The tests get the server's URI
# in LANPEER_TEST_MONGO_URI and the binary in LANPEER_FERRETDB (to start and
# stop servers of their own).
test: ferretdb
	@set -e; \
	if [ -n "$$LANPEER_TEST_MONGO_URI" ]; then \
		echo "make: store/mongo tests use LANPEER_TEST_MONGO_URI"; \
		$(GO) test -race ./...; \
	else \
		dir=$$(mktemp -d); pid=; \
		trap 'if [ -n "$$pid" ]; then kill $$pid 2>/dev/null || true; wait $$pid 2>/dev/null || true; fi; rm -rf "$$dir"' EXIT INT TERM; \
		mkdir "$$dir/data"; \
		"$(FERRETDB)" -log-level error "$$dir/data" >"$$dir/uri" 2>"$$dir/log" & pid=$$!; \
		n=0; while [ ! -s "$$dir/uri" ]; do \
			n=$$((n + 1)); \
			if [ $$n -gt 600 ] || ! kill -0 $$pid 2>/dev/null; then \
				echo "make: FerretDB did not start:" >&2; cat "$$dir/log" >&2; exit 1; \
			fi; \
			sleep 0.1; \
		done; \
		export LANPEER_TEST_MONGO_URI=$$(head -n 1 "$$dir/uri") LANPEER_FERRETDB="$(FERRETDB)"; \
		echo "make: FerretDB for the tests at $$LANPEER_TEST_MONGO_URI"; \
		$(GO) test -race ./...; \
	fi
	@set -e; n=0; for t in $(LIVE_FUZZ); do n=$$((n + 1)); done; \
	if [ $$n -gt 5 ]; then echo "make: LIVE_FUZZ lists $$n targets, at most 5 are allowed" >&2; exit 1; fi; \
	for t in $(LIVE_FUZZ); do \
		pkg=$${t%%:*}; name=$${t#*:}; \
		if ! $(GO) test -list "^$$name\$$" "$$pkg" 2>/dev/null | grep -qx "$$name"; then \
			echo "make: LIVE_FUZZ names $$name in $$pkg, which has no such fuzz target" >&2; exit 1; \
		fi; \
		echo "fuzz $$pkg $$name for $(LIVE_FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(LIVE_FUZZTIME) -timeout 2m "$$pkg"; \
	done

# Build (or find up to date) the FerretDB binary the tests use.
ferretdb:
	cd tools/ferretdb && $(GO) build -o "$(FERRETDB)" .

# Every Fuzz target in the module, found with go test -list, FUZZTIME each.
fuzz:
	@set -e; list=$$($(GO) test -list '^Fuzz' ./...); \
	targets=$$(printf '%s\n' "$$list" | awk '/^Fuzz/ { n = n " " $$1; next } \
		/^ok/ { k = split(n, a, " "); for (i = 1; i <= k; i++) print $$2 ":" a[i]; n = "" }'); \
	if [ -z "$$targets" ]; then echo "make: no fuzz targets found" >&2; exit 1; fi; \
	for t in $$targets; do \
		pkg=$${t%%:*}; name=$${t#*:}; \
		echo "fuzz $$pkg $$name for $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 5s "$$pkg"; \
	done

# store/mongo's benchmarks start a FerretDB of their own (LANPEER_FERRETDB).
bench: ferretdb
	LANPEER_FERRETDB="$(FERRETDB)" $(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) ./...

lint:
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "make: gofmt would change:" >&2; echo "$$out" >&2; exit 1; fi
	$(GO) vet ./...
	cd tools/ferretdb && $(GO) vet ./...

clean:
	rm -rf bin

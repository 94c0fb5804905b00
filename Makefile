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
LIVE_FUZZ     ?= ./framing:FuzzReadFrame ./wire:FuzzDecode ./session:FuzzParseKnownPeers
LIVE_FUZZTIME ?= 2s

.PHONY: build run test fuzz bench lint clean

build:
	$(GO) build -o $(BIN) ./cmd/lanpeer

# Listen on 127.0.0.1:7700 (the identity is created on first run) and print
# the direct messages peers send; type @PEERID TEXT to answer. Ctrl-C stops it.
run: build
	$(BIN) listen

test:
	$(GO) test -race ./...
	@set -e; n=0; for t in $(LIVE_FUZZ); do n=$$((n + 1)); done; \
	if [ $$n -gt 5 ]; then echo "make: LIVE_FUZZ lists $$n targets, at most 5 are allowed" >&2; exit 1; fi; \
	for t in $(LIVE_FUZZ); do \
		pkg=$${t%%:*}; name=$${t#*:}; \
		if ! $(GO) test -list "^$$name\$$" "$$pkg" 2>/dev/null | grep -qx "$$name"; then \
			echo "make: LIVE_FUZZ names $$name in $$pkg, which has no such fuzz target" >&2; exit 1; \
		fi; \
		echo "fuzz $$pkg $$name for $(LIVE_FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(LIVE_FUZZTIME) "$$pkg"; \
	done

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

bench:
	$(GO) test -run '^$$' -bench . -benchtime $(BENCHTIME) ./...

lint:
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "make: gofmt would change:" >&2; echo "$$out" >&2; exit 1; fi
	$(GO) vet ./...

clean:
	rm -rf bin

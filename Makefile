# godlm: see README.md. `make test` and `make demo` install their own
# prerequisites (scripts/prereqs.sh) on a Debian host.

GO        ?= go
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X github.com/godlm/godlm/internal/version.Version=$(VERSION)
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
# The VM tests boot real kernels under emulation; give them room.
TEST_TIMEOUT ?= 40m

.PHONY: all build prereqs test unit lint fuzz demo bench clean kmods kernel-check test-notify

all: build

## build: static binaries into bin/
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/ ./cmd/...

## prereqs: install what the VM lab needs (Debian packages, package lists)
prereqs:
	@scripts/prereqs.sh

## test: lint, then every test: unit, fuzz seeds, and the VM tests on the real kernel
test: prereqs lint
	$(GO) test -count=1 -timeout $(TEST_TIMEOUT) ./...

## unit: the quick tests only (no VMs)
unit:
	$(GO) test -short ./...

## lint: gofmt, go vet, staticcheck
lint:
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags vmtest ./libdlm/
	$(GO) vet -tags vmnotify ./tests/vm/
	$(GO) run $(STATICCHECK) ./...
	$(GO) run $(STATICCHECK) -tags vmtest ./libdlm/
	@# libdlm and the dlm_tool client build everywhere (ErrUnsupported off Linux).
	for os in darwin freebsd windows; do GOOS=$$os $(GO) build ./libdlm/... ./controld/dlmc/ || exit 1; done

## fuzz: run each fuzz target for a while (FUZZTIME, default 30s)
FUZZTIME ?= 30s
fuzz:
	$(GO) test -run='^$$' -fuzz=FuzzParseUevent -fuzztime=$(FUZZTIME) ./configfs
	$(GO) test -run='^$$' -fuzz=FuzzDecodeResult -fuzztime=$(FUZZTIME) ./libdlm
	$(GO) test -run='^$$' -fuzz=FuzzReadMessage -fuzztime=$(FUZZTIME) ./controld/dlmc
	$(GO) test -run='^$$' -fuzz=FuzzParseStates -fuzztime=$(FUZZTIME) ./controld/dlmc
	$(GO) test -run='^$$' -fuzz='^FuzzDaemonError$$' -fuzztime=$(FUZZTIME) ./controld/dlmc
	$(GO) test -run='^$$' -fuzz='^FuzzParseConfig$$' -fuzztime=$(FUZZTIME) ./controld
	$(GO) test -run='^$$' -fuzz='^FuzzParseArgs$$' -fuzztime=$(FUZZTIME) ./controld
	$(GO) test -run='^$$' -fuzz='^FuzzReadKernelFiles$$' -fuzztime=$(FUZZTIME) ./configfs
	$(GO) test -run='^$$' -fuzz='^FuzzMountedAt$$' -fuzztime=$(FUZZTIME) ./configfs
	$(GO) test -run='^$$' -fuzz='^FuzzParseNodeID$$' -fuzztime=$(FUZZTIME) ./configfs
	$(GO) test -run='^$$' -fuzz='^FuzzLockspaceMinor$$' -fuzztime=$(FUZZTIME) ./libdlm
	$(GO) test -run='^$$' -fuzz=FuzzReadFrame -fuzztime=$(FUZZTIME) ./tests/lab/internal/wire
	$(GO) test -run='^$$' -fuzz=FuzzDecodeMsg -fuzztime=$(FUZZTIME) ./controld/lockspace
	$(GO) test -run='^$$' -fuzz=FuzzRestore -fuzztime=$(FUZZTIME) ./controld/lockspace
	$(GO) test -run='^$$' -fuzz=FuzzParse -fuzztime=$(FUZZTIME) ./controld/fence
	$(GO) test -run='^$$' -fuzz=FuzzDecode -fuzztime=$(FUZZTIME) ./controld/fence
	for f in FuzzDecodeEntry FuzzDecodeSnapshot FuzzDecodeState FuzzReadFrame FuzzDecodeHandshake FuzzCoreStep; do \
		$(GO) test -run='^$$' -fuzz=$$f -fuzztime=$(FUZZTIME) ./controld/cluster/raftcluster || exit 1; done
	for f in FuzzParseKey FuzzAcceptHandshake FuzzDialHandshake; do \
		$(GO) test -run='^$$' -fuzz=$$f -fuzztime=$(FUZZTIME) ./controld/cluster/raftcluster || exit 1; done

## soak: the simulator over SOAK_SEEDS seeds from SOAK_FIRST (make test runs 1 to 1000);
## every failing seed is listed, the first with its trace
SOAK_SEEDS ?= 10000
SOAK_FIRST ?= 1
.PHONY: soak
soak:
	GODLM_SIM_SEEDS=$(SOAK_SEEDS) GODLM_SIM_FIRST=$(SOAK_FIRST) $(GO) test -count=1 -timeout 0 -v -run '^TestSimulate$$' ./controld/sim

## demo: boot a 3-node VM cluster and show it working
demo: prereqs
	$(GO) run ./tests/cmd/labdemo

## bench: side-by-side benchmarks against the reference, written to BENCHMARKS.md
bench: prereqs
	$(GO) run ./tests/cmd/bench

## kmods: the patched DLM, GFS2 and OCFS2 modules for the guest kernel (cached)
kmods: prereqs
	kernel/build.sh

## test-notify: the NOTIFY series on 3 VMs with the patched modules (not yet in make test)
test-notify: prereqs
	$(GO) test -tags vmnotify -count=1 -timeout $(TEST_TIMEOUT) -run TestNotify -v ./tests/vm/

## kernel-check: the series applies, every prefix builds, checkpatch --strict is clean
kernel-check: prereqs
	kernel/check.sh

clean:
	rm -rf bin

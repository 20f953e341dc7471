# gocell — the kit's everyday commands. Run them from the repository root.
#
#   sudo make test      every test, privileged ones included (needs root)
#   make unit           the tests that need no root (privileged ones skip)
#   sudo make rootfs    (re)build the busybox root file system for steps 03+
#   sudo make vm-test   the privileged tests again, inside a throwaway VM
#                       with a stock Debian kernel and cgroup v2
#   sudo make vm-test-v1  the same VM with a cgroup v1 layout
#   sudo make bench     gocell beside runc and crun (bench-scale: with 100 up)
#   sudo make transcripts  record the chapters' outputs in the test VM
#   make lint           gofmt and go vet
#
# The learner's loop (internal/learn), for NN = 01 … 08:
#   make start-NN       a workspace work/NN-name: the step with its new
#                       primitive taken out (FORCE=1: start it again)
#   sudo make check-NN  the step's own checks on your workspace
#   sudo make check-NN-K  exercise K of chapter NN (09 and 10 too)
#   make solution-NN    diff -u between your workspace and the step
#
# GOCELL_ROOTFS picks where the root file system lives (default below).

GO            ?= go
GOCELL_ROOTFS ?= /var/lib/gocell-lessons/rootfs
export GOCELL_ROOTFS

.PHONY: test unit rootfs rootfs-if-needed vm-test vm-test-v1 bench bench-scale lint check-root

# The README's test command. GOCELL_PRIV_TESTS=1 turns the kernel-level
# tests on; with it set, a test that finds itself without root fails
# instead of skipping, so this cannot pass by skipping.
test: check-root lint rootfs-if-needed
	scripts/test.sh

unit:
	$(GO) test -count=1 ./...

rootfs:
	scripts/mkrootfs.sh $(GOCELL_ROOTFS)

# Built when missing, or older than the layout this checkout expects
# ("rootfs v2" in its marker), as scripts/provision.sh decides too; not
# because a fresh clone's mkrootfs.sh looks newer than a rootfs that
# others on the machine may be using.
rootfs-if-needed:
	@grep -qs 'rootfs v2' $(GOCELL_ROOTFS)/etc/gocell-rootfs || scripts/mkrootfs.sh $(GOCELL_ROOTFS)

# PKGS picks packages, e.g. make vm-test PKGS=./07-cgroups (default: all).
vm-test:
	scripts/vmtest/run.sh $(PKGS)

vm-test-v1:
	VMTEST_CGROUP=v1 scripts/vmtest/run.sh $(PKGS)

bench:
	scripts/bench.sh

# Record the chapters' console blocks in the test VM (cgroup v2, the
# class VM's user, paths and addresses) and write what they printed back
# into lessons/ (internal/transcript). CHAPTERS picks some, such as
# CHAPTERS=07-cgroups.md (default: all).
transcripts:
	@dir=$$(mktemp -d) && trap 'rm -rf "$$dir"' EXIT && \
		VMTEST_TRANSCRIPTS=$$dir scripts/vmtest/run.sh $(CHAPTERS) && \
		$(GO) run ./internal/transcript/cmd/transcript apply $$dir

# work/ holds the learners' workspaces, a module of its own: the kit's
# checks never look at code in progress.
lint:
	@out=$$(find . -name '*.go' -not -path './work/*' | xargs gofmt -l); \
		if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

# The tool is built, not run with go run, which would add its own
# "exit status 1" to every verdict; in a directory of the user's own, as
# some run it with sudo and some without.
LEARN = $(or $(TMPDIR),/tmp)/gocell-learn-$(shell id -u)/learn

.PHONY: learn-tool
learn-tool:
	@$(GO) build -o $(LEARN) ./internal/learn/cmd/learn

# Without a number, make would look for a file to build instead.
start- check- solution-:
	@echo "make $@NN: NN is a step, such as 03 (make $@03)"; exit 2

start-%: learn-tool
	@$(LEARN) start $*

check-%: learn-tool
	@$(LEARN) check $*

solution-%: learn-tool
	@$(LEARN) solution $*

check-root:
	@if [ "$$(id -u)" != 0 ]; then echo "make test needs root for the kernel-level tests: run sudo make test (or make unit for the rest)"; exit 1; fi

# How gocell does as containers pile up (scripts/bench.sh --scale).
bench-scale:
	scripts/bench.sh --scale

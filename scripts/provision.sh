#!/usr/bin/env bash
# provision.sh prepares a machine for gocell's lessons: the tools the
# lessons use to look at namespaces from the host, a Go toolchain at least
# as new as go.mod asks for, the busybox root file system the steps pivot
# into, and warm Go caches so every step works offline afterwards.
#
# It is the one provisioning script: the Vagrantfile runs it inside the
# class VM, and on any Debian 12 or Ubuntu 24.04 machine you can run it by
# hand from a checkout:
#
#	sudo scripts/provision.sh
#
# It is idempotent: run it again and it only does what is still missing.
# The network is needed only for what is missing (apt packages, the Go
# tarball, Go modules); a second run on a provisioned machine needs none.
#
# Options (each also has an environment variable, for the Vagrantfile):
#
#	--with-vm-test   also install qemu-system-x86, cpio and kmod, which only
#	                 `make vm-test` needs                 GOCELL_WITH_VM_TEST=1
#	--force-rootfs   rebuild the root file system even if one is there
#	                 (alias: --force)                     GOCELL_FORCE_ROOTFS=1
#	--no-modules     do not download Go modules or warm the build cache
#	                                                      GOCELL_MODULES=0
#	--repo DIR       the gocell checkout (default: the one holding this
#	                 script, else /vagrant)               GOCELL_REPO=DIR
#	--user NAME      the learner's account; it gets its own module cache
#	                 too (default: $SUDO_USER)            GOCELL_USER=NAME
#	--login-dir DIR  make NAME's interactive shells start in DIR (the
#	                 Vagrantfile passes /vagrant)         GOCELL_LOGIN_DIR=DIR
#	--rootfs DIR     where the root file system goes
#	                 (default: /var/lib/gocell-lessons/rootfs)  GOCELL_ROOTFS=DIR
#	--apt-mirror URL before installing packages, point apt at a mirror
#	                 that keeps the official paths, such as
#	                 https://mirrors.tuna.tsinghua.edu.cn  GOCELL_APT_MIRROR=URL
#
# Keep the root file system, and anything a container writes, on the
# machine's own disk. pivot_root(2) and overlayfs upper directories do not
# work on shared folders (vboxsf, NFS, 9p), so nothing here lives under
# /vagrant; only the source code does.

# -e: stop at the first failing command; -u: an unset variable is an error,
# not an empty string; -o pipefail: a pipeline fails if any part of it does.
set -euo pipefail

# Where the official Go distribution goes. Go's install instructions use
# this path, and /etc/profile.d and sudo's secure_path below point at it.
GOROOT_DIR=/usr/local/go
# The official tarballs. go.dev/dl/FILE redirects to dl.google.com/go/FILE;
# the checksum FILE.sha256 is only published on dl.google.com, which is
# where golang.org/dl's own installer fetches it from too.
GO_DL_URL=${GOCELL_GO_DL_URL:-https://go.dev/dl}
GO_SUM_URL=${GOCELL_GO_SUM_URL:-https://dl.google.com/go}

log() { printf '\n==> %s\n' "$*"; }
note() { printf '    %s\n' "$*"; }
warn() { printf 'provision: warning: %s\n' "$*" >&2; }
die() {
	printf 'provision: %s\n' "$*" >&2
	exit 1
}

usage() {
	# Print the comment block at the top of this file, without the '#'.
	sed -n '2,/^$/{s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"
}

# Temporary files and directories to remove however the script ends.
cleanup_paths=()
cleanup() {
	if [ "${#cleanup_paths[@]}" -gt 0 ]; then
		rm -rf "${cleanup_paths[@]}"
	fi
}
trap cleanup EXIT

# version_ge A B succeeds when version A >= version B, comparing each
# dot-separated number as a number: 1.26.10 is newer than 1.26.9, which a
# plain string comparison gets wrong. sort -V does that comparison.
version_ge() {
	[ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | head -n 1)" = "$2" ]
}

# write_file PATH MODE writes standard input to PATH only if it differs from
# what is there, so a second run changes nothing and says so.
write_file() {
	local path=$1 mode=$2 tmp
	tmp=$(mktemp)
	cleanup_paths+=("$tmp")
	cat >"$tmp"
	if [ -f "$path" ] && cmp -s "$tmp" "$path"; then
		note "$path: unchanged"
		return
	fi
	install -m "$mode" "$tmp" "$path"
	note "$path: written"
}

# ---------------------------------------------------------------------------
# Packages.

# Each package is here for a reason a learner meets in the lessons.
packages=(
	# A statically linked busybox: the only program inside the steps' root
	# file system, which has no libc for a dynamic one to load.
	busybox-static
	# ip(8): links, addresses, routes and `ip netns` for 05-net, and the
	# bridge(8) command to look at the bridge from the host.
	iproute2
	# nft(8): to inspect the NAT and port rules final/ writes through
	# netlink. (final/ never shells out to it; it is for looking.)
	nftables
	# lsns(8), nsenter(1), unshare(1): list, enter and make namespaces by
	# hand, to compare with what the Go code does.
	util-linux
	# ps(1): 02-pid's "why does ps still show the host?" question.
	procps
	# pstree(1): see the parent/child shape of run -> child -> /bin/sh.
	psmisc
	# ping(8) on the host side of 05-net's veth pair.
	iputils-ping
	# ethtool(8): 05-net's exercise reads a veth's peer index with -S.
	ethtool
	# getfattr(1): 08-overlay looks at overlayfs's xattrs in an upper
	# directory (trusted.overlay.opaque).
	attr
	# capsh(1): 06-user decodes capability masks with --decode.
	libcap2-bin
	# git, to diff neighbouring steps and follow the history; make, for
	# the Makefile's targets (rootfs, test, lint...).
	git
	make
	# python3: scripts/mkimage.sh writes an OCI image layout's JSON with
	# it (an offline image for gocell), and scripts/bench.sh uses it.
	python3
	# curl and the CA certificates it checks TLS with, to fetch Go below.
	ca-certificates
	curl
	# sudo: learners run the steps as `sudo go run ...`.
	sudo
	# man and section 2 of the manual: the lessons cite clone(2),
	# pivot_root(2), mount(2), setns(2), unshare(2)...
	man-db
	manpages-dev
	# The engines and runtimes of lesson 10: podman (with conmon) and
	# containerd (with ctr and its runc shim) drive gocell-runtime, and
	# runc and crun are what they drive otherwise; make bench times
	# gocell beside runc and crun.
	podman
	containerd
	runc
	crun
	# bash-completion loads /etc/bash_completion.d, where the completion
	# of gocell's commands and names goes (see shell_completion); tmux is
	# the terminal its test types Tab into.
	bash-completion
	tmux
	# No build-essential: gocell builds with CGO_ENABLED=0 and needs no C
	# compiler. No iptables: final/ uses nftables.
)
# Only `make vm-test` needs these: it boots a stock Debian kernel under
# qemu-system-x86_64 with an initramfs packed by cpio, and copies kernel
# modules in, which depmod and modprobe (kmod) index and load; `make
# transcripts` also gives it an ext4 disk (mkfs.ext4, e2fsprogs).
vm_test_packages=(qemu-system-x86 cpio kmod e2fsprogs)

is_installed() {
	dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

install_packages() {
	local want=("${packages[@]}") missing=() p
	if [ "$with_vm_test" = 1 ]; then
		want+=("${vm_test_packages[@]}")
	fi
	for p in "${want[@]}"; do
		is_installed "$p" || missing+=("$p")
	done
	if [ "${#missing[@]}" -eq 0 ]; then
		note "all ${#want[@]} packages already installed"
		return
	fi
	note "missing: ${missing[*]}"
	if [ -n "$apt_mirror" ]; then
		use_apt_mirror "$apt_mirror" /etc/apt
	fi
	# Never stop to ask a question (debconf prompts, restart dialogs).
	export DEBIAN_FRONTEND=noninteractive
	# Wait up to 10 minutes for the package database instead of failing:
	# on a fresh Ubuntu VM, unattended-upgrades often holds the lock for
	# the first minutes after boot.
	# apt says so once a second while it waits; apt_run says it once.
	apt_run update
	# --no-install-recommends keeps the VM small (qemu alone would pull in
	# hundreds of megabytes of firmware and GUI libraries).
	apt_run install -y --no-install-recommends "${missing[@]}"
}

# The hosts of the official Debian and Ubuntu archives, as apt's sources
# name them (one-line .list files and deb822 .sources files alike).
official_apt='https?://(deb\.debian\.org|security\.debian\.org|([a-z]{2}\.)?archive\.ubuntu\.com|security\.ubuntu\.com|ports\.ubuntu\.com)'

# check_apt_mirror URL dies unless URL is a scheme and a host, nothing more.
check_apt_mirror() {
	[[ ${1%/} =~ ^https?://[A-Za-z0-9.-]+(:[0-9]+)?$ ]] ||
		die "apt mirror '$1': want only the scheme and host of a mirror that keeps the official paths, such as https://mirrors.tuna.tsinghua.edu.cn"
}

# use_apt_mirror URL DIR points the sources of apt in DIR (/etc/apt) at a
# mirror that keeps the official archives' paths, such as the university
# mirrors in mainland China: http://deb.debian.org/debian becomes
# URL/debian, http://archive.ubuntu.com/ubuntu becomes URL/ubuntu. The
# first time a file changes, its original is kept in DIR/gocell-orig/,
# outside sources.list.d, where apt would read it. Other sources (a
# vendor's own repository) are left alone.
use_apt_mirror() {
	local url=${1%/} dir=$2 f
	check_apt_mirror "$1"
	for f in "$dir"/sources.list "$dir"/sources.list.d/*.list "$dir"/sources.list.d/*.sources; do
		[ -f "$f" ] && grep -Eq "$official_apt" "$f" || continue
		local orig=$dir/gocell-orig/${f#"$dir"/}
		if [ ! -e "$orig" ]; then
			mkdir -p "$(dirname "$orig")" && cp -p "$f" "$orig"
		fi
		sed -E -i "s#$official_apt#$url#g" "$f"
		note "apt: $f now uses $url (the original: $orig)"
	done
}

# apt_run ARGS... runs apt-get ARGS, waiting for the package database lock,
# with the repeated "Waiting for cache lock" lines folded into one. With
# pipefail, apt-get's exit status is the pipeline's.
apt_run() {
	apt-get -q -o DPkg::Lock::Timeout=600 "$@" 2>&1 |
		awk '/^Waiting for cache lock/ {
			if (!seen++) print "    (another apt or dpkg is running; waiting up to 10 minutes)"
			next
		}
		{ print; fflush() }'
}

# ---------------------------------------------------------------------------
# Go.

# The Go version go.mod needs: its `toolchain` line if there is one, else
# its `go` line. "go 1.22" means 1.22.0, whose tarball is go1.22.0; before
# Go 1.21 the first release of 1.N was plain "go1.N".
wanted_go_version() {
	local gomod=$1 v t minor
	v=$(sed -n 's/^go[[:space:]]\{1,\}\([0-9][0-9.]*\)[[:space:]]*$/\1/p' "$gomod" | head -n 1)
	t=$(sed -n 's/^toolchain[[:space:]]\{1,\}go\([0-9][0-9.]*\)[[:space:]]*$/\1/p' "$gomod" | head -n 1)
	[ -n "$v" ] || die "$gomod: no 'go 1.N[.P]' line found"
	if [ -n "$t" ] && version_ge "$t" "$v"; then
		v=$t
	fi
	case "$v" in
	1.*.*) ;;
	1.*)
		minor=${v#1.}
		if [ "$minor" -ge 21 ]; then
			v=$v.0
		fi
		;;
	*) die "$gomod: cannot understand Go version '$v'" ;;
	esac
	echo "$v"
}

# The version of the Go at GOROOT_DIR, like 1.26.8, or nothing. It runs
# from / with GOTOOLCHAIN=local so that no go.mod around makes the go
# command switch to (and download) another toolchain just to answer.
installed_go_version() {
	local v
	[ -x "$GOROOT_DIR/bin/go" ] || return 0
	v=$(cd / && GOTOOLCHAIN=local "$GOROOT_DIR/bin/go" env GOVERSION 2>/dev/null) || return 0
	v=${v%% *}
	echo "${v#go}"
}

go_arch() {
	local a
	a=$(dpkg --print-architecture 2>/dev/null || uname -m)
	case "$a" in
	amd64 | x86_64) echo amd64 ;;
	# Apple Silicon Macs run arm64 VMs.
	arm64 | aarch64) echo arm64 ;;
	*) die "no Go tarball for architecture '$a' (gocell supports amd64 and arm64)" ;;
	esac
}

# install_go VERSION downloads the official tarball, checks its SHA-256 and
# replaces GOROOT_DIR with it. Go's install instructions insist on removing
# the old tree rather than unpacking over it: files left behind from an older
# release break the new one. The new tree is unpacked beside the old one and
# swapped in with two renames, so an interrupted download leaves the old Go
# working.
install_go() {
	local version=$1 file tmp sum
	file=go$version.linux-$(go_arch).tar.gz
	tmp=$(mktemp -d "$(dirname "$GOROOT_DIR")/.gocell-go.XXXXXX")
	cleanup_paths+=("$tmp")
	note "downloading $GO_DL_URL/$file"
	curl -fsSL --retry 3 -o "$tmp/$file" "$GO_DL_URL/$file" ||
		die "could not download $GO_DL_URL/$file"
	sum=$(curl -fsSL --retry 3 "$GO_SUM_URL/$file.sha256") ||
		die "could not download $GO_SUM_URL/$file.sha256"
	sum=${sum%%[[:space:]]*}
	printf '%s  %s\n' "$sum" "$tmp/$file" | sha256sum -c --quiet - ||
		die "$file: SHA-256 does not match $GO_SUM_URL/$file.sha256"
	tar -C "$tmp" -xzf "$tmp/$file"
	rm -rf "$GOROOT_DIR.old"
	if [ -e "$GOROOT_DIR" ]; then
		mv "$GOROOT_DIR" "$GOROOT_DIR.old"
	fi
	mv "$tmp/go" "$GOROOT_DIR"
	rm -rf "$GOROOT_DIR.old" "$tmp"
	note "installed $("$GOROOT_DIR/bin/go" version)"
}

ensure_go() {
	local want have
	want=$(wanted_go_version "$repo/go.mod")
	have=$(installed_go_version)
	if [ -n "$have" ] && version_ge "$have" "$want"; then
		note "Go $have at $GOROOT_DIR satisfies go.mod's $want"
	else
		note "go.mod needs Go $want; $GOROOT_DIR has ${have:-none}"
		install_go "$want"
	fi
}

# Put Go on PATH for everyone. Login shells read /etc/profile.d; `vagrant
# ssh` opens one. Go comes first so it wins over an older distribution Go
# in /usr/bin.
go_on_path() {
	write_file /etc/profile.d/gocell-go.sh 0644 <<EOF
# Written by gocell's scripts/provision.sh: the official Go from go.dev.
case ":\$PATH:" in
*:$GOROOT_DIR/bin:*) ;;
*) PATH=$GOROOT_DIR/bin:\$PATH; export PATH ;;
esac
EOF

	# sudo does not keep the caller's PATH: it replaces it with secure_path
	# from /etc/sudoers, which knows nothing of $GOROOT_DIR/bin, so
	# `sudo go run` would say "go: command not found". A drop-in file
	# under /etc/sudoers.d extends it. Its name has no dot on purpose: sudo
	# skips files in that directory whose names contain one. A broken
	# sudoers file can lock everyone out of sudo, so visudo checks the new
	# file before it is put in place.
	local base=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/snap/bin
	local tmp
	tmp=$(mktemp)
	cleanup_paths+=("$tmp")
	cat >"$tmp" <<EOF
# Written by gocell's scripts/provision.sh so that \`sudo go run ...\`
# finds the Go in $GOROOT_DIR/bin (sudo replaces PATH with secure_path).
Defaults secure_path="$GOROOT_DIR/bin:$base"
EOF
	visudo -cqf "$tmp" || die "visudo rejected the sudoers drop-in; not installed"
	write_file /etc/sudoers.d/gocell-go 0440 <"$tmp"
}

# Completion of gocell's commands, flags and container and image names
# for bash and zsh. Both ask gocell itself (`gocell __complete`), so they
# stay right as gocell changes, and do nothing until gocell is installed.
shell_completion() {
	write_file /etc/bash_completion.d/gocell 0644 <<'EOF'
# Written by gocell's scripts/provision.sh: gocell's own completion script.
if command -v gocell >/dev/null 2>&1; then
	source <(gocell completion bash)
fi
EOF
	mkdir -p /usr/local/share/zsh/site-functions
	write_file /usr/local/share/zsh/site-functions/_gocell 0644 <<'EOF'
#compdef gocell
# Written by gocell's scripts/provision.sh: candidates from gocell itself.
local -a cands
cands=("${(@f)$(gocell __complete "${(@)words[2,CURRENT-1]}" "${words[CURRENT]}" 2>/dev/null)}")
compadd -a cands
EOF
}

# ---------------------------------------------------------------------------
# Root file system.

ensure_rootfs() {
	# "rootfs v2": files owned by the user namespace's root (100000), see
	# mkrootfs.sh; an older root file system is rebuilt.
	if grep -qs 'rootfs v2' "$rootfs/etc/gocell-rootfs" && [ "$force_rootfs" != 1 ]; then
		note "$rootfs already built ($(cat "$rootfs/etc/gocell-rootfs")); --force-rootfs rebuilds it"
		return
	fi
	# Run it with sh rather than by its execute bit: on a shared folder
	# or a Windows checkout the bit may be lost.
	sh "$repo/scripts/mkrootfs.sh" "$rootfs"
}

# ---------------------------------------------------------------------------
# Go modules and build cache.

# as_user USER CMD... runs CMD in the repository as USER with a clean
# environment: that user's HOME (so Go uses ~USER/go/pkg/mod and
# ~USER/.cache/go-build) and a PATH with Go first.
as_user() {
	local user=$1 home v
	local keep=()
	shift
	home=$(getent passwd "$user" | cut -d: -f6)
	# Keep what a classroom network or a teacher's module mirror needs.
	for v in http_proxy https_proxy no_proxy HTTP_PROXY HTTPS_PROXY NO_PROXY \
		GOPROXY GONOSUMDB GOPRIVATE GOSUMDB GOINSECURE; do
		if [ -n "${!v:-}" ]; then
			keep+=("$v=${!v}")
		fi
	done
	(cd "$repo" && runuser -u "$user" -- env -i \
		HOME="$home" USER="$user" LOGNAME="$user" \
		PATH="$GOROOT_DIR/bin:/usr/local/bin:/usr/bin:/bin" \
		GOTOOLCHAIN=local "${keep[@]}" "$@")
}

# warm_caches USER downloads every module the repository's packages and
# their tests import, then compiles them once. `go mod download` alone
# fetches only what go.mod lists; `go list -deps -test` also resolves what
# the tests need. Building fills the build cache, so the first `sudo go
# run` in class takes seconds, not a minute. The build is best-effort: a
# half-written step must not stop provisioning.
warm_caches() {
	local user=$1
	as_user "$user" go mod download || return 1
	as_user "$user" go list -e -deps -test ./... >/dev/null || return 1
	# -buildvcs=false: stamping needs git and changes nothing in the cache.
	as_user "$user" go build -buildvcs=false -o /dev/null ./... ||
		warn "go build ./... failed as $user; modules are cached, the build cache is not warm"
}

ensure_modules() {
	if [ "$modules" != 1 ]; then
		modules_status="skipped (--no-modules)"
		return
	fi
	# Learners run the steps with `sudo go run`, and under sudo HOME is
	# /root, so it is root's module cache that must be full. The learner's
	# own cache serves `go test` without root, go vet and editors.
	local users=(root) u
	if [ -n "$learner" ]; then
		users+=("$learner")
	fi
	modules_status=""
	for u in "${users[@]}"; do
		note "as $u: go mod download, go list -deps -test, go build"
		if warm_caches "$u"; then
			modules_status+="$u:ok "
		else
			warn "could not download Go modules as $u; the steps will need the network later"
			modules_status+="$u:FAILED "
		fi
	done
}

# `go build` runs git to stamp version information into the binary. Since
# Git 2.35.2, git refuses to work in a repository that another user owns
# ("detected dubious ownership"), and go build then fails with "error
# obtaining VCS status". In the VM /vagrant belongs to vagrant, and
# `sudo go build` runs git as root: exactly that case. (go run and go test
# do not stamp, so the steps themselves are not affected.) Tell git, in
# /etc/gitconfig, that this one repository is safe for every user.
trust_repo() {
	local owner u needed=0 users=(root)
	owner=$(stat -c %u "$repo")
	if [ -n "$learner" ]; then
		users+=("$learner")
	fi
	for u in "${users[@]}"; do
		if [ "$(id -u "$u")" != "$owner" ]; then
			needed=1
		fi
	done
	[ "$needed" = 1 ] || return 0
	if git config --system --get-all safe.directory 2>/dev/null | grep -qxF "$repo"; then
		note "git: $repo is already a safe.directory"
	else
		git config --system --add safe.directory "$repo"
		note "git: added $repo to safe.directory in /etc/gitconfig"
	fi
}

# Make the learner's interactive shells start in the repository, so that
# `vagrant ssh` lands where `sudo go run ./03-mount ...` works. Only when
# the shell starts in the home directory, so it never yanks a shell that
# was opened somewhere else on purpose.
ensure_login_dir() {
	if [ -z "$learner" ] || [ -z "$login_dir" ]; then
		note "nothing to do (no --user and --login-dir)"
		return
	fi
	local home bashrc marker="# gocell: start in $login_dir (added by scripts/provision.sh)"
	home=$(getent passwd "$learner" | cut -d: -f6)
	bashrc=$home/.bashrc
	if [ -f "$bashrc" ] && grep -qxF "$marker" "$bashrc"; then
		note "$bashrc already starts in $login_dir"
		return
	fi
	{
		echo ""
		echo "$marker"
		echo "[ \"\$PWD\" = \"\$HOME\" ] && [ -d $login_dir ] && cd $login_dir"
	} >>"$bashrc"
	chown "$learner:" "$bashrc"
	note "$bashrc: interactive shells start in $login_dir"
}

# ---------------------------------------------------------------------------

summary() {
	local cg
	case "$(stat -f -c %T /sys/fs/cgroup 2>/dev/null)" in
	cgroup2fs) cg="v2 (unified)" ;;
	tmpfs) cg="v1 (or hybrid)" ;;
	*) cg="unknown" ;;
	esac
	cat <<EOF

gocell provisioning done.
  Go:          $("$GOROOT_DIR/bin/go" version) (on PATH via /etc/profile.d/gocell-go.sh, and for sudo)
  root fs:     $rootfs ($(cat "$rootfs/etc/gocell-rootfs"))
  Go modules:  ${modules_status}
  repository:  $repo
  cgroups:     $cg
  vm-test kit: $(if [ "$with_vm_test" = 1 ]; then echo installed; else echo "not installed (--with-vm-test)"; fi)

Next, in a new login shell (or after: . /etc/profile.d/gocell-go.sh):
  cd $repo && sudo go run ./03-mount run /bin/sh
EOF
}

main() {
	local args="$*"
	with_vm_test=${GOCELL_WITH_VM_TEST:-0}
	force_rootfs=${GOCELL_FORCE_ROOTFS:-0}
	modules=${GOCELL_MODULES:-1}
	repo=${GOCELL_REPO:-}
	learner=${GOCELL_USER:-${SUDO_USER:-}}
	login_dir=${GOCELL_LOGIN_DIR:-}
	rootfs=${GOCELL_ROOTFS:-/var/lib/gocell-lessons/rootfs}
	apt_mirror=${GOCELL_APT_MIRROR:-}
	modules_status=""

	while [ $# -gt 0 ]; do
		case "$1" in
		--with-vm-test) with_vm_test=1 ;;
		--force-rootfs | --force) force_rootfs=1 ;;
		--no-modules) modules=0 ;;
		--repo | --user | --login-dir | --rootfs | --apt-mirror)
			[ $# -ge 2 ] || die "$1 needs an argument"
			case "$1" in
			--apt-mirror) apt_mirror=$2 ;;
			--repo) repo=$2 ;;
			--user) learner=$2 ;;
			--login-dir) login_dir=$2 ;;
			--rootfs) rootfs=$2 ;;
			esac
			shift
			;;
		-h | --help)
			usage
			exit 0
			;;
		*) die "unknown option '$1' (try --help)" ;;
		esac
		shift
	done

	[ -z "$apt_mirror" ] || check_apt_mirror "$apt_mirror"
	[ "$(id -u)" -eq 0 ] || die "must run as root; try: sudo $0 $args"

	# Find the checkout: the one this script sits in, unless told. Vagrant
	# copies the script to /tmp before running it, so there it passes
	# --repo /vagrant.
	if [ -z "$repo" ]; then
		repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
		if [ ! -f "$repo/go.mod" ] && [ -f /vagrant/go.mod ]; then
			repo=/vagrant
		fi
	fi
	repo=$(cd "$repo" && pwd) || die "no such directory: $repo"
	if [ ! -f "$repo/go.mod" ] || [ ! -f "$repo/scripts/mkrootfs.sh" ]; then
		die "$repo is not a gocell checkout (no go.mod or scripts/mkrootfs.sh); use --repo DIR"
	fi

	# root needs no second copy of everything.
	if [ "$learner" = root ]; then
		learner=""
	fi
	if [ -n "$learner" ] && ! getent passwd "$learner" >/dev/null; then
		die "no such user: $learner"
	fi

	log "Packages"
	install_packages
	log "Go"
	ensure_go
	go_on_path
	log "Shell completion"
	shell_completion
	log "Root file system"
	ensure_rootfs
	log "Go modules and build cache"
	trust_repo
	ensure_modules
	log "Login shell"
	ensure_login_dir
	summary
}

# Run main only when executed, not when sourced (tests source this file to
# call single functions such as version_ge).
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	main "$@"
fi

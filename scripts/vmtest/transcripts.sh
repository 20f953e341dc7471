# transcripts.sh is sourced by run.sh when VMTEST_TRANSCRIPTS is set
# (make transcripts): instead of the tests, the VM gets what the chapters'
# commands need, and plays them with internal/transcript's recorder.
#
# The VM then looks like the class VM where it shows in the chapters: a
# user named vagrant who types the commands and has sudo, the repository
# at /vagrant, the host name gocell-vm, an eth0 at 10.0.2.15/24 as
# VirtualBox's NAT gives, cgroup v2 and a shared /, bash and dash, and
# the programs of a Debian or Ubuntu install, copied from this machine
# with the libraries they load. It has no Go toolchain: the steps and
# gocell are built here, and a small `go` stands in for `go run ./NN-name`
# and `go build -o FILE ./NN-name` (the only two forms the chapters use).
#
# Run at source time, in run.sh's "test binaries" stage: build.

# The programs the chapters run, at a prompt or in a pipe, besides
# busybox's: all of them must be on this machine (scripts/provision.sh
# installs them).
transcript_tools=(
	bash dash
	awk basename cat chmod chown cp cut date df dirname du echo env false
	find grep head id kill ln ls mkdir mknod mktemp nproc printf readlink
	realpath rm rmdir sed seq sleep sort stat tail tee test timeout touch
	install
	tr true uname wc xargs
	ps pgrep pkill pstree sysctl free
	findmnt flock lsns nsenter setpriv unshare mount umount ipcmk ipcrm ipcs
	hostname
	ip bridge nft ping
	getfattr capsh
	curl gzip tar sha256sum
)

tlib=$stage/usr/local/libexec/gocell
mkdir -p "$tlib" "$stage/usr/local/bin" "$stage/usr/bin"
say "building the steps, gocell and the recorder for the transcripts"
for d in [0-9][0-9]-*/; do
	CGO_ENABLED=0 go build -o "$tlib/${d%/}" "./${d%/}" || die "cannot build ./${d%/}"
done
CGO_ENABLED=0 go build -o "$tlib/final" ./final || die "cannot build ./final"
CGO_ENABLED=0 go build -o "$tlib/final-cmd-gocell-runtime" ./final/cmd/gocell-runtime ||
	die "cannot build ./final/cmd/gocell-runtime"
CGO_ENABLED=0 go build -o "$tlib/final-cmd-gocell-shim" ./final/cmd/gocell-shim ||
	die "cannot build ./final/cmd/gocell-shim"
CGO_ENABLED=0 go build -o "$stage/usr/local/bin/transcript" ./internal/transcript/cmd/transcript ||
	die "cannot build the recorder"
CGO_ENABLED=0 go build -o "$stage/usr/bin/sudo" ./internal/transcript/cmd/vmsudo ||
	die "cannot build the VM's sudo"
# Variants a chapter shows on purpose: a step with one line taken out
# (03's pitfall "with the call commented out"). A chapter's block swaps
# one in with hidden= and back with after=.
variant() { # STEP NAME LINE
	local d rc=0
	d=$(mktemp -d "$repo/_variant.XXXXXX")
	grep -vxF -- "$3" "$1/main.go" >"$d/main.go"
	CGO_ENABLED=0 go build -o "$tlib/$1.$2" "./${d#"$repo"/}" || rc=$?
	rm -rf "$d"
	[ "$rc" = 0 ] || die "cannot build $1 $2"
}
variant 03-mount without-private "$(printf '\tmakeMountsPrivate()')"
# setuid root, as sudo is; cpio keeps the mode and -R 0:0 the owner.
chmod 4755 "$stage/usr/bin/sudo"

# go: the two forms the chapters use, with the step built beforehand.
cat >"$stage/usr/local/bin/go" <<'EOF'
#!/bin/sh
# The VM that records the chapters has no Go toolchain: the steps and
# gocell were built on the host (scripts/vmtest/transcripts.sh). This
# plays `go run ./NN-name ARGS` (with go run's "exit status N" on
# failure) and `go build -o FILE ./PACKAGE` (a step, final, or
# final/cmd/gocell-runtime).
lib=/usr/local/libexec/gocell
case "$1" in
run)
	pkg=${2#./}
	shift 2
	"$lib/$pkg" "$@"
	rc=$?
	if [ "$rc" -ne 0 ]; then
		echo "exit status $rc" >&2
		exit 1
	fi
	;;
build)
	# ./final/cmd/gocell-runtime was built as final-cmd-gocell-runtime.
	pkg=$(printf %s "${4#./}" | tr / -)
	[ "$2" = -o ] && [ -x "$lib/$pkg" ] || { echo "go: only go build -o FILE ./PACKAGE here" >&2; exit 2; }
	cp "$lib/$pkg" "$3"
	;;
*)
	echo "go: only go run and go build in this VM" >&2
	exit 2
	;;
esac
EOF
chmod 755 "$stage/usr/local/bin/go"

# copy_tool NAME copies the program NAME of this machine, and every
# library it loads (ldd), to the same paths in the VM.
copy_tool() {
	local p lib
	p=$(type -P "$1") || die "$1 is not installed here, and the chapters use it (sudo scripts/provision.sh)"
	p=$(readlink -f "$p")
	mkdir -p "$stage/usr/local/bin"
	cp "$p" "$stage/usr/local/bin/$1"
	ldd "$p" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' |
		while read -r lib; do
			[ -e "$stage$lib" ] && continue
			mkdir -p "$stage$(dirname "$lib")"
			cp -L "$lib" "$stage$lib"
		done
}
for tool in "${transcript_tools[@]}"; do
	copy_tool "$tool"
done
# The C.UTF-8 locale (findmnt draws its tree with it), and terminfo,
# where pstree and ps look the terminal up (ncurses-base).
mkdir -p "$stage/usr/lib/locale"
cp -a /usr/lib/locale/C.utf8 "$stage/usr/lib/locale/" || die "no C.UTF-8 locale here (/usr/lib/locale/C.utf8)"
for d in /lib/terminfo /usr/share/terminfo; do
	[ -d "$d" ] && mkdir -p "$stage$d" && cp -a "$d/." "$stage$d/"
done

# transcripts_stage adds the class VM's users and files to the
# initramfs (run.sh calls it once /etc/passwd is written).
transcripts_stage() {
	echo "vagrant:x:1000:1000:vagrant:/home/vagrant:/bin/bash" >>"$stage/etc/passwd"
	{
		echo "sudo:x:27:vagrant"
		echo "vagrant:x:1000:"
	} >>"$stage/etc/group"
	mkdir -p "$stage/home/vagrant"
	printf '127.0.0.1\tlocalhost\n127.0.1.1\tgocell-vm\n' >"$stage/etc/hosts"
	# VirtualBox's NAT resolver; nothing in the chapters looks a name up.
	echo "nameserver 10.0.2.3" >"$stage/etc/resolv.conf"
}

# transcripts_verdict takes the recordings out of the VM's output and
# writes them into $transcripts; it ends the run.
transcripts_verdict() {
	local rc
	rc=$(sed -n 's/^GOCELL-TRANSCRIPTS-END \([0-9]*\)$/\1/p' "$log")
	if [ -z "$rc" ]; then
		say "---- last lines of the kernel console ----"
		tail -n 30 "$work/console.log" >&2
		die "the VM never reported its recordings (see its output above)"
	fi
	[ "$rc" = 0 ] || die "recording failed in the VM (exit $rc; its output is above)"
	mkdir -p "$transcripts"
	sed -n '/^GOCELL-TRANSCRIPTS-BEGIN$/,/^GOCELL-TRANSCRIPTS-END/p' "$log" |
		sed '1d;$d' | base64 -d | tar -xz -C "$transcripts" ||
		die "the recordings came out of the VM damaged"
	say "recordings in $transcripts/lessons/transcripts; timings: build $t_gobuild, VM $t_vm, total $(since "$t0")"
	exit 0
}

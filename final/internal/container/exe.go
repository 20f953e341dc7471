package container

// Which binary a container's gocell processes run.
//
// A container's monitor is gocell itself, and it runs for as long as the
// container does. In runc's CVE-2019-5736, a process in the container
// opened the runtime's binary through /proc/PID/exe and, once it could,
// wrote over it: the next `docker exec` on the host ran the attacker's
// code as root. No process of a gocell container can name the monitor
// (it is in none of the container's namespaces), but the binary itself
// should not be writable that way either, whatever the kernel lets a
// process do with a file it can name.
//
// So the monitor never runs the host's binary. The CLI copies it once
// into <root>/bin/gocell/KEY/gocell (directories only root may enter) and
// starts the monitor from that copy through a read-only bind mount,
// made in a mount namespace of the CLI's one thread that starts the
// monitor: opening it for writing fails with EROFS, from anywhere, and
// the host's gocell is never touched. The container's own process,
// until it executes the command, runs that same file: package oci would
// otherwise make a sealed memfd(2) copy of its binary, as runc does, but
// a file on a read-only mount is as safe, and costs no 17 MB copy at
// every start (oci's selfCopy). gocell-shim, which the monitor of a
// detached container becomes (package shim), is copied and mounted the
// same way.

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/gocell/gocell/final/internal/shim"
	"github.com/gocell/gocell/final/internal/spawn"
	"golang.org/x/sys/unix"
)

// exeCopy returns the copy of the running binary in <root>/bin, making
// it if it is not there (binCopy).
func (s *Store) exeCopy() (string, error) { return s.binCopy("/proc/self/exe", "gocell", nil) }

// ShimEnv names the gocell-shim to use, when it is not beside gocell.
const ShimEnv = "GOCELL_SHIM"

// shimCopy returns the copy in <root>/bin of gocell-shim (package shim):
// the one GOCELL_SHIM names, or else the one in gocell's own directory.
// Without one, or with GOCELL_SHIM=none, it returns "": the monitor then
// runs gocell itself as the shim, which works the same but keeps more
// memory per container.
func (s *Store) shimCopy() (string, error) {
	src := os.Getenv(ShimEnv)
	if src == "none" {
		return "", nil
	}
	if src == "" {
		self, err := os.Executable()
		if err != nil {
			return "", nil
		}
		src = filepath.Join(filepath.Dir(self), "gocell-shim")
		if _, err := os.Stat(src); err != nil {
			return "", nil
		}
	} else if _, err := os.Stat(src); err != nil {
		return "", fmt.Errorf("%s=%s: %w (build it with go build -o PATH ./final/cmd/gocell-shim, or unset %s)", ShimEnv, src, err, ShimEnv)
	}
	return s.binCopy(src, "gocell-shim", checkShim)
}

// checkShim runs a would-be shim with --protocol before its first use: a
// program that is not a gocell-shim, or one of another gocell that hands
// over differently, would start and end at once, and take the container
// with it (its parent-death signal).
func checkShim(src string) error {
	out, err := exec.Command(src, "--protocol").Output()
	if got := strings.TrimSpace(string(out)); err != nil || got != shim.Protocol {
		if err != nil {
			got = err.Error()
		}
		return fmt.Errorf("%s is not a gocell-shim of this gocell (--protocol: %q, want %q): "+
			"build both from the same checkout, go build -o DIR/gocell-shim ./final/cmd/gocell-shim", src, got, shim.Protocol)
	}
	return nil
}

// binCopy returns the copy of the binary src in <root>/bin/NAME/KEY/NAME,
// making it if it is not there, after check(copy), if check is not nil. KEY is the original's device, inode,
// size and modification time, so a rebuilt binary gets a new copy; older
// copies of NAME are removed then (running processes keep theirs), and
// anything else in <root>/bin but the NAME directories (the layout of
// earlier versions).
func (s *Store) binCopy(src, name string, check func(string) error) (string, error) {
	var st unix.Stat_t
	if err := unix.Stat(src, &st); err != nil {
		return "", fmt.Errorf("stat %s: %w", src, err)
	}
	bin := filepath.Join(s.Root, "bin")
	key := fmt.Sprintf("%x-%x-%x-%x", st.Dev, st.Ino, st.Size, st.Mtim.Nano())
	// Named NAME, in a directory of its own: the kernel names the
	// process after the file (/proc/PID/comm), and ps shows that name.
	dir := filepath.Join(bin, name, key)
	path := filepath.Join(dir, name)
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	in, err := os.Open(src)
	if err != nil {
		return "", err
	}
	defer in.Close()
	tmp, err := os.CreateTemp(dir, ".copy-*")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name())
	_, err = io.Copy(tmp, in)
	if err == nil {
		// Executable by anyone who can reach it: the holder of a
		// --userns id map (idmapNamespace) runs gocell as a user of
		// the container, through /proc/self/exe.
		err = tmp.Chmod(0o555)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil && check != nil {
		// The copy, before anything runs it as what it should be.
		err = check(tmp.Name())
	}
	if err == nil {
		// link(2), not rename(2): the first copy stays, whoever made
		// it. Renaming another over it would, for a moment, take the
		// name from under a concurrent start's bind mount, and would
		// detach the bind mounts of running monitors on it.
		err = os.Link(tmp.Name(), path)
		if errors.Is(err, os.ErrExist) {
			err = nil
		}
	}
	if err != nil {
		return "", fmt.Errorf("copy %s to %s: %w", src, dir, err)
	}
	// Running monitors and shims hold their binaries open, and execute
	// them through the descriptor (RunMonitor): removing a copy does not
	// take it from them.
	older, _ := os.ReadDir(filepath.Join(bin, name))
	for _, e := range older {
		if e.Name() != key {
			os.RemoveAll(filepath.Join(bin, name, e.Name()))
		}
	}
	entries, _ := os.ReadDir(bin)
	for _, e := range entries {
		if e.Name() != "gocell" && e.Name() != "gocell-shim" {
			os.RemoveAll(filepath.Join(bin, e.Name()))
		}
	}
	return path, nil
}

// startReadOnly starts cmd, whose Path is the first of exes, with exes
// (gocell, and gocell-shim if there is one) seen through read-only bind
// mounts. It runs on a thread of its own that leaves the
// host's mount namespace for a copy of it: unshare(2) CLONE_NEWNS,
// after CLONE_FS, which a thread of a multithreaded process must give up
// first. The copy is a slave of the host's, so mounts made on the host
// later still reach it, and nothing of it reaches the host. The thread
// ends afterwards (spawn.OnThread); the process it started keeps the
// namespace.
func startReadOnly(cmd *exec.Cmd, exes ...string) error {
	err := spawn.OnThread(func() error {
		if err := unix.Unshare(unix.CLONE_FS | unix.CLONE_NEWNS); err != nil {
			return fmt.Errorf("unshare(2): %w", err)
		}
		// Equivalent to: mount --make-rslave /
		if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_SLAVE, ""); err != nil {
			return fmt.Errorf("make / a slave: %w", err)
		}
		for _, exe := range exes {
			// Equivalent to: mount --bind -o ro EXE EXE
			if err := unix.Mount(exe, exe, "", unix.MS_BIND, ""); err != nil {
				return fmt.Errorf("bind %s: %w", exe, err)
			}
			flags := uintptr(unix.MS_BIND | unix.MS_REMOUNT | unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV)
			if err := unix.Mount("", exe, "", flags, ""); err != nil {
				return fmt.Errorf("make %s read-only: %w", exe, err)
			}
		}
		return cmd.Start()
	})
	if errors.Is(err, unix.EPERM) {
		return fmt.Errorf("start monitor: %w (gocell must run as root)", err)
	}
	return err
}

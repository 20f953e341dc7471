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
// into <root>/bin/KEY/gocell (directories only root may enter) and
// starts the monitor from that copy through a read-only bind mount,
// made in a mount namespace of the CLI's one thread that starts the
// monitor: opening it for writing fails with EROFS, from anywhere, and
// the host's gocell is never touched. The container's own process,
// until it executes the command, runs that same file: package oci would
// otherwise make a sealed memfd(2) copy of its binary, as runc does, but
// a file on a read-only mount is as safe, and costs no 17 MB copy at
// every start (oci's selfCopy).

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/gocell/gocell/final/internal/spawn"
	"golang.org/x/sys/unix"
)

// exeCopy returns the copy of the running binary in <root>/bin, making
// it if it is not there. A copy's directory is named after the
// original's device, inode, size and modification time, so a rebuilt
// gocell gets a new one; older copies are removed then (running
// processes keep theirs).
func (s *Store) exeCopy() (string, error) {
	var st unix.Stat_t
	if err := unix.Stat("/proc/self/exe", &st); err != nil {
		return "", fmt.Errorf("stat own binary: %w", err)
	}
	bin := filepath.Join(s.Root, "bin")
	key := fmt.Sprintf("%x-%x-%x-%x", st.Dev, st.Ino, st.Size, st.Mtim.Nano())
	// Named gocell, in a directory of its own: the kernel names the
	// process after the file (/proc/PID/comm), and ps shows that name.
	dir := filepath.Join(bin, key)
	path := filepath.Join(dir, "gocell")
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	src, err := os.Open("/proc/self/exe")
	if err != nil {
		return "", err
	}
	defer src.Close()
	tmp, err := os.CreateTemp(dir, ".copy-*")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name())
	_, err = io.Copy(tmp, src)
	if err == nil {
		// Executable by anyone who can reach it: the holder of a
		// --userns id map (idmapNamespace) runs it as a user of the
		// container, through /proc/self/exe.
		err = tmp.Chmod(0o555)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
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
		return "", fmt.Errorf("copy own binary to %s: %w", dir, err)
	}
	entries, _ := os.ReadDir(bin)
	for _, e := range entries {
		if e.Name() != key {
			os.RemoveAll(filepath.Join(bin, e.Name()))
		}
	}
	return path, nil
}

// startReadOnly starts cmd, whose Path is exe, with exe seen through a
// read-only bind mount. It runs on a thread of its own that leaves the
// host's mount namespace for a copy of it: unshare(2) CLONE_NEWNS,
// after CLONE_FS, which a thread of a multithreaded process must give up
// first. The copy is a slave of the host's, so mounts made on the host
// later still reach it, and nothing of it reaches the host. The thread
// ends afterwards (spawn.OnThread); the process it started keeps the
// namespace.
func startReadOnly(cmd *exec.Cmd, exe string) error {
	err := spawn.OnThread(func() error {
		if err := unix.Unshare(unix.CLONE_FS | unix.CLONE_NEWNS); err != nil {
			return fmt.Errorf("unshare(2): %w", err)
		}
		// Equivalent to: mount --make-rslave /
		if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_SLAVE, ""); err != nil {
			return fmt.Errorf("make / a slave: %w", err)
		}
		// Equivalent to: mount --bind -o ro EXE EXE
		if err := unix.Mount(exe, exe, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind %s: %w", exe, err)
		}
		flags := uintptr(unix.MS_BIND | unix.MS_REMOUNT | unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV)
		if err := unix.Mount("", exe, "", flags, ""); err != nil {
			return fmt.Errorf("make %s read-only: %w", exe, err)
		}
		return cmd.Start()
	})
	if errors.Is(err, unix.EPERM) {
		return fmt.Errorf("start monitor: %w (gocell must run as root)", err)
	}
	return err
}

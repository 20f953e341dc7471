package network

import (
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// locked runs fn while holding the exclusive lock on StateDir/lock. See
// "Concurrency" in the package comment. The lock is a flock(2) on an open
// file description of its own, so it also excludes other goroutines of
// this process; fn must not take it again.
// Equivalent to: flock STATEDIR/lock COMMAND
func (m *Manager) locked(fn func() error) error {
	path := filepath.Join(m.opts.StateDir, "lock")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("open lock: %w", err)
	}
	defer f.Close() // closing the last descriptor releases the lock
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("lock %s: %w", path, err)
	}
	return fn()
}

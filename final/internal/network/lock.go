package network

import (
	"path/filepath"

	"github.com/gocell/gocell/final/internal/persist"
	"golang.org/x/sys/unix"
)

// locked runs fn while holding the exclusive lock on StateDir/lock. See
// "Concurrency" in the package comment. The lock is a flock(2) on an open
// file description of its own, so it also excludes other goroutines of
// this process; fn must not take it again.
// Equivalent to: flock STATEDIR/lock COMMAND
func (m *Manager) locked(fn func() error) error {
	unlock, err := persist.Lock(filepath.Join(m.opts.StateDir, "lock"), unix.LOCK_EX)
	if err != nil {
		return err
	}
	defer unlock()
	return fn()
}

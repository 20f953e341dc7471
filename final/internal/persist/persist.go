// Package persist is how gocell's packages keep state safely: files
// replaced whole (WriteFile), locks between processes (Lock), and
// processes named for good, by pid and start time (StartTime). gocell
// and gocell-runtime are many short-lived processes that read and write
// the same files; each of these was written three or four times before
// it lived here.
package persist

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// WriteFile replaces path with data, with permissions perm: written to a
// temporary file beside it and renamed over it (rename(2) is atomic), so
// a reader sees the old file or the whole new one, never half of either,
// even if we are killed in the middle. With durable, fsync(2) before the
// rename makes the new content survive a crash too; a file made anew at
// every start does without (it costs a millisecond or more).
func WriteFile(path string, data []byte, perm os.FileMode, durable bool) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	if _, err = f.Write(data); err == nil {
		err = f.Chmod(perm)
	}
	if err == nil && durable {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

// Lock takes a flock(2) on path, creating it: unix.LOCK_EX, or
// unix.LOCK_SH to share it with other readers. It returns the function
// that releases it; the kernel releases it too if we die. Each call
// opens the file anew, so goroutines of one process exclude each other
// as separate processes do.
// Equivalent to: flock PATH COMMAND
func Lock(path string, how int) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock: %w", err)
	}
	for {
		err = unix.Flock(int(f.Fd()), how)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() { f.Close() }, nil // closing the descriptor drops the lock
}

// StartTime is when a process started, in clock ticks since boot: field
// 22 of /proc/PID/stat (proc_pid_stat(5)). A pid can be reused; a pid and
// its start time name one process for good.
func StartTime(pid int) (uint64, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// The command name, field 2, is in parentheses and may hold spaces
	// and parentheses itself: count the fields after the last ')'.
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("bad /proc/%d/stat", pid)
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (the state), so field 22 is f[19].
	if len(f) < 20 {
		return 0, fmt.Errorf("bad /proc/%d/stat", pid)
	}
	return strconv.ParseUint(f[19], 10, 64)
}

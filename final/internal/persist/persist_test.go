package persist

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state.json")
	require.NoError(t, WriteFile(path, []byte("one"), 0o600, true))
	require.NoError(t, WriteFile(path, []byte("two"), 0o644, false))
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, "two", string(data))
	st, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o644), st.Mode().Perm())
	entries, _ := os.ReadDir(dir)
	assert.Len(t, entries, 1, "no temporary file left")
	// A failure leaves the old file, and no temporary one.
	assert.Error(t, WriteFile(filepath.Join(dir, "nosuch", "x"), []byte("x"), 0o600, true))
	entries, _ = os.ReadDir(dir)
	assert.Len(t, entries, 1)
}

func TestLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lock")
	unlock, err := Lock(path, unix.LOCK_EX)
	require.NoError(t, err)
	// Each Lock opens the file anew, so a second one conflicts as
	// another process's would: not without waiting, until we let go.
	_, err = Lock(path, unix.LOCK_EX|unix.LOCK_NB)
	assert.ErrorIs(t, err, unix.EWOULDBLOCK)
	unlock()
	again, err := Lock(path, unix.LOCK_EX|unix.LOCK_NB)
	require.NoError(t, err)
	again()
	// Shared locks share.
	u1, err := Lock(path, unix.LOCK_SH)
	require.NoError(t, err)
	u2, err := Lock(path, unix.LOCK_SH)
	require.NoError(t, err)
	u1()
	u2()
}

func TestStartTime(t *testing.T) {
	// A command whose name has spaces and parentheses, as field 2 may.
	dir := t.TempDir()
	odd := filepath.Join(dir, "a) b (c")
	require.NoError(t, os.Symlink("/bin/sleep", odd))
	cmd := exec.Command(odd, "10")
	require.NoError(t, cmd.Start())
	defer cmd.Process.Kill()
	st, err := StartTime(cmd.Process.Pid)
	require.NoError(t, err)
	self, err := StartTime(os.Getpid())
	require.NoError(t, err)
	assert.GreaterOrEqual(t, st, self, "the child started after us")
	again, _ := StartTime(cmd.Process.Pid)
	assert.Equal(t, st, again)
	cmd.Process.Kill()
	cmd.Wait()
	time.Sleep(10 * time.Millisecond)
	_, err = StartTime(cmd.Process.Pid)
	assert.Error(t, err, "a process that is gone has none")
}

package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/gocell/gocell/internal/celltest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestCopy: cp both ways, checked from outside (the host's files, and the
// container's through /proc/PID/root); symlinks are copied as symlinks
// and never followed, on either side; a set-user-ID file loses the bit
// on its way out; bad paths are refused with one line and leave nothing.
func TestCopy(t *testing.T) {
	e := setup(t)
	res := gocell(t, "run", "-d", "--name", "box", "--network", "none", e.image, "sleep", "1000")
	require.Equal(t, 0, res.Code, res.Stderr)
	pid := pidOf(t, "box")
	inBox := func(p string) string { return fmt.Sprintf("/proc/%d/root%s", pid, p) }

	// Host to container: a tree with a file, a directory, a symlink.
	src := filepath.Join(t.TempDir(), "src")
	require.NoError(t, os.MkdirAll(filepath.Join(src, "b"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(src, "a"), []byte("from the host\n"), 0o640))
	require.NoError(t, os.WriteFile(filepath.Join(src, "b", "c"), []byte("deep\n"), 0o644))
	require.NoError(t, os.Symlink("/etc/passwd", filepath.Join(src, "l")))
	res = gocell(t, "cp", src, "box:/data")
	require.Equal(t, 0, res.Code, res.Stderr)
	data, err := os.ReadFile(inBox("/data/a"))
	require.NoError(t, err)
	assert.Equal(t, "from the host\n", string(data))
	fi, err := os.Lstat(inBox("/data/a"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o640), fi.Mode().Perm())
	assert.Equal(t, uint32(0), fi.Sys().(*syscall.Stat_t).Uid, "the container's root owns it")
	link, err := os.Readlink(inBox("/data/l"))
	require.NoError(t, err)
	assert.Equal(t, "/etc/passwd", link, "a symlink, as it was")
	assert.FileExists(t, inBox("/data/b/c"))
	res = gocell(t, "cp", filepath.Join(src, "a"), "box:/tmp")
	require.Equal(t, 0, res.Code, res.Stderr)
	assert.FileExists(t, inBox("/tmp/a"), "into an existing directory")

	// Container to host: set-user-ID lost, symlinks kept as symlinks.
	res = gocell(t, "exec", "box", "sh", "-c", "mkdir /out && echo secret > /out/f && chmod 4755 /out/f && "+
		"ln -s /etc /out/etclink && ln -s /etc /etclink")
	require.Equal(t, 0, res.Code, res.Stderr)
	host := t.TempDir()
	res = gocell(t, "cp", "box:/out", host)
	require.Equal(t, 0, res.Code, res.Stderr)
	fi, err = os.Lstat(filepath.Join(host, "out", "f"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o755), fi.Mode().Perm()&os.ModePerm)
	assert.Zero(t, fi.Mode()&os.ModeSetuid, "no set-user-ID file reaches the host")
	fi, err = os.Lstat(filepath.Join(host, "out", "etclink"))
	require.NoError(t, err)
	assert.True(t, fi.Mode()&os.ModeSymlink != 0, "the symlink, not /etc")
	// The symlink named itself: copied, not followed out to /etc.
	res = gocell(t, "cp", "box:/etclink", filepath.Join(host, "copied"))
	require.Equal(t, 0, res.Code, res.Stderr)
	fi, err = os.Lstat(filepath.Join(host, "copied"))
	require.NoError(t, err)
	assert.True(t, fi.Mode()&os.ModeSymlink != 0)

	// Into the container through its symlinks: they resolve inside its
	// root, never on the host's; a magic link of its /proc is refused.
	marker := "gocell-cp-test-" + filepath.Base(host)
	require.NoError(t, os.WriteFile(filepath.Join(src, marker), []byte("x"), 0o644))
	res = gocell(t, "cp", filepath.Join(src, marker), "box:/etclink/")
	require.Equal(t, 0, res.Code, res.Stderr)
	assert.FileExists(t, inBox("/etc/"+marker), "the container's /etc")
	assert.NoFileExists(t, "/etc/"+marker, "never the host's")
	res = gocell(t, "exec", "box", "ln", "-s", "/proc/self/root/etc", "/magic")
	require.Equal(t, 0, res.Code, res.Stderr)
	res = gocell(t, "cp", filepath.Join(src, marker), "box:/magic/")
	assert.Equal(t, 2, res.Code, "through /proc's magic links: %s", res.Stdout)
	assert.Contains(t, res.Stderr, "/magic/: not a directory in box")
	assert.NoFileExists(t, "/etc/"+marker)
	link, err = os.Readlink(inBox("/magic"))
	assert.NoError(t, err, "the symlink is left as it was")
	assert.Equal(t, "/proc/self/root/etc", link)

	// What a hostile container puts in the way: a FIFO, its /proc; and a
	// second copy of a directory merges, each file replaced whole.
	res = gocell(t, "exec", "box", "sh", "-c", "mkfifo /fifo && echo two > /out/f && echo new > /out/g")
	require.Equal(t, 0, res.Code, res.Stderr)
	res = gocell(t, "cp", "box:/out", host)
	require.Equal(t, 0, res.Code, res.Stderr)
	data, err = os.ReadFile(filepath.Join(host, "out", "f"))
	require.NoError(t, err)
	assert.Equal(t, "two\n", string(data), "replaced")
	assert.FileExists(t, filepath.Join(host, "out", "g"), "added")

	// A sparse file stays sparse: 256 MiB long, next to nothing on disk.
	res = gocell(t, "exec", "box", "sh", "-c", "truncate -s 256M /sparse && echo end >> /sparse")
	require.Equal(t, 0, res.Code, res.Stderr)
	res = gocell(t, "cp", "box:/sparse", host)
	require.Equal(t, 0, res.Code, res.Stderr)
	fi, err = os.Stat(filepath.Join(host, "sparse"))
	require.NoError(t, err)
	assert.Equal(t, int64(256<<20+4), fi.Size())
	assert.Less(t, fi.Sys().(*syscall.Stat_t).Blocks*512, int64(1<<20), "the holes kept")
	f, err := os.Open(filepath.Join(host, "sparse"))
	require.NoError(t, err)
	tail := make([]byte, 4)
	_, err = f.ReadAt(tail, 256<<20)
	f.Close()
	require.NoError(t, err)
	assert.Equal(t, "end\n", string(tail), "the data after the hole")

	// Bad input: one line, nothing half-written.
	empty := t.TempDir()
	for _, tc := range []struct {
		code int
		want string
		args []string
	}{
		{2, "no such file in box", []string{"box:/nonexistent", empty}},
		{2, "may not climb with ..", []string{"box:../../etc/passwd", empty}},
		{2, "no such directory in box", []string{filepath.Join(src, "a"), "box:/no/such/dir/x"}},
		{125, "no such container: nosuch", []string{"nosuch:/etc/passwd", empty}},
		{2, "must be CONTAINER:PATH", []string{src, empty}},
		{2, "from one container to another", []string{"box:/a", "box:/b"}},
		{2, "is not a file, a directory or a symlink", []string{"box:/fifo", empty}},
		{2, "in the container's /proc, which cp does not copy", []string{"box:/proc/kallsyms", empty}},
		{2, "in the container's /sys, which cp does not copy", []string{"box:/sys/kernel", empty}},
		{2, "the host's whole root is not copied", []string{"/", "box:/x"}},
		{2, "/dev/null is not a regular file or a directory: not replaced", []string{"box:/data/a", "/dev/null"}},
		{2, "a tar stream on stdout is not supported", []string{"box:/data/a", "-"}},
	} {
		res := gocell(t, append([]string{"cp"}, tc.args...)...)
		assert.Equal(t, tc.code, res.Code, "%v: %s", tc.args, res.Stderr)
		assert.Contains(t, res.Stderr, tc.want, tc.args)
		assert.Equal(t, 1, strings.Count(res.Stderr, "error:"), "%v: %s", tc.args, res.Stderr)
	}
	entries, err := os.ReadDir(empty)
	require.NoError(t, err)
	assert.Empty(t, entries, "nothing written by a refused cp")
	entries, err = os.ReadDir(inBox("/"))
	require.NoError(t, err)
	for _, en := range entries {
		assert.False(t, strings.HasPrefix(en.Name(), ".gocell-cp-"), "a temporary entry left: %s", en.Name())
	}

	// A stopped container: its overlay, mounted where the host never
	// sees it, for the copy alone.
	require.Equal(t, 0, gocell(t, "stop", "-t", "0", "box").Code)
	before := celltest.Snapshot(t)
	stopped := t.TempDir()
	res = gocell(t, "cp", "box:/data", stopped)
	require.Equal(t, 0, res.Code, res.Stderr)
	data, err = os.ReadFile(filepath.Join(stopped, "data", "a"))
	require.NoError(t, err)
	assert.Equal(t, "from the host\n", string(data))
	res = gocell(t, "cp", filepath.Join(src, "b", "c"), "box:/while-stopped")
	require.Equal(t, 0, res.Code, res.Stderr)
	celltest.AssertMountsUnchanged(t, before)
	require.Equal(t, 0, gocell(t, "start", "box").Code)
	res = gocell(t, "exec", "box", "cat", "/while-stopped")
	assert.Equal(t, "deep\n", res.Stdout, "copied into the writable layer")
	fi, err = os.Stat("/dev/null")
	require.NoError(t, err)
	assert.True(t, fi.Mode()&os.ModeCharDevice != 0, "the host's /dev/null is still a device")

	// A stopped container's volumes are mounted only when it runs: a
	// copy there would keep it from starting, and is refused.
	require.Equal(t, 0, gocell(t, "create", "--name", "volbox", "--network", "none", "-v", "cpvol:/data", e.image, "true").Code)
	res = gocell(t, "cp", filepath.Join(src, "a"), "volbox:/data")
	assert.Equal(t, 2, res.Code, res.Stderr)
	assert.Contains(t, res.Stderr, "/data is on /data, which is mounted only while volbox runs")
	res = gocell(t, "cp", filepath.Join(src, "a"), "volbox:/")
	assert.Equal(t, 0, res.Code, "elsewhere it goes: %s", res.Stderr)
}

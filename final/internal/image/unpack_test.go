package image

import (
	"archive/tar"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/gocell/gocell/internal/celltest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// TestUnpackRefusesEscapes feeds layers that try to write outside their
// directory. Each must fail with ErrUnsafeLayer, change nothing outside,
// and leave no partial layer. The store lives in sandbox/store, so the
// layer is unpacked at sandbox/store/tmp/layer-*/diff: four ".." from
// there is the sandbox, where the test watches for intruders.
func TestUnpackRefusesEscapes(t *testing.T) {
	sandbox := t.TempDir()
	s, err := Open(filepath.Join(sandbox, "store"))
	require.NoError(t, err)
	outside := filepath.Join(sandbox, "outside")
	require.NoError(t, os.Mkdir(outside, 0o755))
	abs := fmt.Sprintf("/etc/gocell-unpack-test-%d", os.Getpid())
	t.Cleanup(func() { os.Remove(abs) })
	var passwd unix.Stat_t
	require.NoError(t, unix.Stat("/etc/passwd", &passwd))

	for _, tc := range []struct {
		name    string
		entries []entry
		msg     string
	}{
		{"dotdot", []entry{{name: "../x", body: "x"}},
			`tar entry "../x": "../x" has a ".." component`},
		{"deep dotdot", []entry{{name: "a/../../../../../pwned", body: "x"}},
			`".." component`},
		{"absolute", []entry{{name: abs, body: "x"}},
			"absolute path"},
		{"symlink to absolute dir, then through it", []entry{
			{name: "evil", typ: tar.TypeSymlink, link: outside},
			{name: "evil/file", body: "x"}},
			`tar entry "evil/file": evil is a symlink; unpacking never writes through symlinks`},
		{"symlink upwards, then through it", []entry{
			{name: "evil", typ: tar.TypeSymlink, link: "../../../.."},
			{name: "evil/pwned", body: "x"}},
			"evil is a symlink"},
		{"symlinked parent deep down", []entry{
			{name: "a/b/", typ: tar.TypeDir},
			{name: "a/b/c", typ: tar.TypeSymlink, link: "/"},
			{name: "a/b/c/etc/pwned", body: "x"}},
			"a/b/c is a symlink"},
		{"directory through a symlink", []entry{
			{name: "evil", typ: tar.TypeSymlink, link: outside},
			{name: "evil/sub/", typ: tar.TypeDir}},
			"evil is a symlink"},
		{"hardlink to absolute path", []entry{
			{name: "passwd", typ: tar.TypeLink, link: "/etc/passwd"}},
			`hardlink target: absolute path "/etc/passwd"`},
		{"hardlink upwards", []entry{
			{name: "passwd", typ: tar.TypeLink, link: "../../../../outside/../../../etc/passwd"}},
			`".." component`},
		{"hardlink through a symlink", []entry{
			{name: "etc", typ: tar.TypeSymlink, link: "/etc"},
			{name: "passwd", typ: tar.TypeLink, link: "etc/passwd"}},
			"etc is a symlink"},
		{"hardlink to a file not in the layer", []entry{
			{name: "passwd", typ: tar.TypeLink, link: "etc/passwd"}},
			`hardlink target "etc/passwd" is not in this layer`},
		{"char device", []entry{
			{name: "dev/mem", typ: tar.TypeChar, major: 1, minor: 1}},
			`tar entry "dev/mem": device node 1:1`},
		{"block device", []entry{
			{name: "sda", typ: tar.TypeBlock, major: 8, minor: 0}},
			"device node 8:0"},
		{"whiteout named ..", []entry{{name: "a/.wh...", body: ""}},
			"malformed whiteout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// A few good entries first, so a partial layer would exist.
			entries := append([]entry{{name: "ok/file", body: "fine"}}, tc.entries...)
			_, err := s.storeLayer(bytes.NewReader(tarBytes(t, entries)), "")
			require.ErrorIs(t, err, ErrUnsafeLayer)
			assert.Contains(t, err.Error(), tc.msg)

			assert.Empty(t, dirEntries(t, outside), "nothing written through the symlink")
			assert.ElementsMatch(t, []string{"outside", "store"}, dirEntries(t, sandbox))
			assert.ElementsMatch(t, []string{"images", "layers", "tmp"},
				dirEntries(t, s.path()))
			_, err = os.Lstat(abs)
			assert.ErrorIs(t, err, os.ErrNotExist)
			var st unix.Stat_t
			require.NoError(t, unix.Stat("/etc/passwd", &st))
			assert.Equal(t, passwd.Nlink, st.Nlink, "/etc/passwd gained no link")
			assert.Equal(t, passwd.Mtim, st.Mtim)
			requireClean(t, s)
		})
	}
}

// TestUnpackTarSemantics checks what a legitimate layer may do.
func TestUnpackTarSemantics(t *testing.T) {
	s := newStore(t)
	entries := []entry{
		{name: "./", typ: tar.TypeDir, mode: 0o755},
		// A file under a directory the tar never lists.
		{name: "implicit/dir/file", body: "a"},
		// A read-only directory with a file in it: the mode must be set
		// after the file is written (matters when not root).
		{name: "ro/", typ: tar.TypeDir, mode: 0o555},
		{name: "ro/file", body: "b"},
		// A symlink may point anywhere: it is data, never followed here.
		{name: "abs", typ: tar.TypeSymlink, link: "/etc/passwd"},
		{name: "up", typ: tar.TypeSymlink, link: "../../.."},
		// A later entry replaces an earlier one, also a symlink, which
		// must be replaced and not written through.
		{name: "replaced", typ: tar.TypeSymlink, link: "/etc/passwd"},
		{name: "replaced", body: "new"},
		// Hardlinks within the layer.
		{name: "bin/busybox", body: "binary", mode: 0o4755},
		{name: "bin/sh", typ: tar.TypeLink, link: "./bin/busybox"},
		{name: "fifo", typ: tar.TypeFifo, mode: 0o600},
		// A directory listed twice keeps its content.
		{name: "twice/", typ: tar.TypeDir},
		{name: "twice/kept", body: "c"},
		{name: "twice/", typ: tar.TypeDir, mode: 0o700},
	}
	rec, err := s.storeLayer(bytes.NewReader(tarBytes(t, entries)), "")
	require.NoError(t, err)
	dir, err := s.layerDir(rec.DiffID)
	require.NoError(t, err)
	assert.Equal(t, int64(1+1+3+6+1), rec.Size)

	read := func(p string) string {
		b, err := os.ReadFile(filepath.Join(dir, p))
		require.NoError(t, err, p)
		return string(b)
	}
	assert.Equal(t, "a", read("implicit/dir/file"))
	assert.Equal(t, "b", read("ro/file"))
	assert.Equal(t, "new", read("replaced"))
	assert.Equal(t, "c", read("twice/kept"))
	target, err := os.Readlink(filepath.Join(dir, "abs"))
	require.NoError(t, err)
	assert.Equal(t, "/etc/passwd", target)

	var a, b unix.Stat_t
	require.NoError(t, unix.Lstat(filepath.Join(dir, "bin/busybox"), &a))
	require.NoError(t, unix.Lstat(filepath.Join(dir, "bin/sh"), &b))
	assert.Equal(t, a.Ino, b.Ino, "hardlink")
	assert.Equal(t, uint32(0o4755), a.Mode&0o7777, "set-uid kept")
	require.NoError(t, unix.Lstat(filepath.Join(dir, "fifo"), &a))
	assert.Equal(t, uint32(unix.S_IFIFO), a.Mode&unix.S_IFMT)
	for p, mode := range map[string]os.FileMode{"ro": 0o555, "twice": 0o700, ".": 0o755} {
		fi, err := os.Stat(filepath.Join(dir, p))
		require.NoError(t, err)
		assert.Equal(t, mode, fi.Mode().Perm(), p)
		assert.Equal(t, mtime, fi.ModTime().UTC(), p)
	}
	requireCleanTmp(t, s)

	// The same bytes again: already stored, no error, one copy.
	again, err := s.storeLayer(bytes.NewReader(tarBytes(t, entries)), rec.DiffID)
	require.NoError(t, err)
	assert.Equal(t, rec, again)
	assert.Len(t, dirEntries(t, s.path("layers")), 1)
	requireCleanTmp(t, s)
}

// requireCleanTmp checks that tmp/ is empty.
func requireCleanTmp(t *testing.T, s *Store) {
	t.Helper()
	assert.Empty(t, dirEntries(t, s.path("tmp")))
}

// TestUnpackOwnership needs root: chown to arbitrary ids.
func TestUnpackOwnership(t *testing.T) {
	celltest.RequirePriv(t)
	s := newStore(t)
	rec, err := s.storeLayer(bytes.NewReader(tarBytes(t, []entry{
		{name: "home/", typ: tar.TypeDir, uid: 1000, gid: 1000},
		{name: "home/f", body: "x", uid: 1000, gid: 100, mode: 0o2755},
		{name: "home/l", typ: tar.TypeSymlink, link: "f", uid: 1001, gid: 1002},
	})), "")
	require.NoError(t, err)
	dir, err := s.layerDir(rec.DiffID)
	require.NoError(t, err)
	for p, want := range map[string][2]uint32{"home": {1000, 1000},
		"home/f": {1000, 100}, "home/l": {1001, 1002}} {
		fi, err := os.Lstat(filepath.Join(dir, p))
		require.NoError(t, err)
		st := fi.Sys().(*syscall.Stat_t)
		assert.Equal(t, want, [2]uint32{st.Uid, st.Gid}, p)
	}
	fi, err := os.Stat(filepath.Join(dir, "home/f"))
	require.NoError(t, err)
	assert.Equal(t, os.ModeSetgid|0o755, fi.Mode()&(os.ModeSetgid|os.ModePerm),
		"set-gid survives chown")
}

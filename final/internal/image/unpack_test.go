package image

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/gocell/gocell/internal/celltest"
	"github.com/gocell/gocell/internal/testimage"
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
		entries []testimage.File
		msg     string
	}{
		{"dotdot", []testimage.File{{Name: "../x", Body: "x"}},
			`tar entry "../x": "../x" has a ".." component`},
		{"deep dotdot", []testimage.File{{Name: "a/../../../../../pwned", Body: "x"}},
			`".." component`},
		{"absolute", []testimage.File{{Name: abs, Body: "x"}},
			"absolute path"},
		{"symlink to absolute dir, then through it", []testimage.File{
			{Name: "evil", Type: tar.TypeSymlink, Link: outside},
			{Name: "evil/file", Body: "x"}},
			`tar entry "evil/file": evil is a symlink; unpacking never writes through symlinks`},
		{"symlink upwards, then through it", []testimage.File{
			{Name: "evil", Type: tar.TypeSymlink, Link: "../../../.."},
			{Name: "evil/pwned", Body: "x"}},
			"evil is a symlink"},
		{"symlinked parent deep down", []testimage.File{
			{Name: "a/b/", Type: tar.TypeDir},
			{Name: "a/b/c", Type: tar.TypeSymlink, Link: "/"},
			{Name: "a/b/c/etc/pwned", Body: "x"}},
			"a/b/c is a symlink"},
		{"directory through a symlink", []testimage.File{
			{Name: "evil", Type: tar.TypeSymlink, Link: outside},
			{Name: "evil/sub/", Type: tar.TypeDir}},
			"evil is a symlink"},
		{"hardlink to absolute path", []testimage.File{
			{Name: "passwd", Type: tar.TypeLink, Link: "/etc/passwd"}},
			`hardlink target: absolute path "/etc/passwd"`},
		{"hardlink upwards", []testimage.File{
			{Name: "passwd", Type: tar.TypeLink, Link: "../../../../outside/../../../etc/passwd"}},
			`".." component`},
		{"hardlink through a symlink", []testimage.File{
			{Name: "etc", Type: tar.TypeSymlink, Link: "/etc"},
			{Name: "passwd", Type: tar.TypeLink, Link: "etc/passwd"}},
			"etc is a symlink"},
		{"hardlink to a file not in the layer", []testimage.File{
			{Name: "passwd", Type: tar.TypeLink, Link: "etc/passwd"}},
			`hardlink target "etc/passwd" is not in this layer`},
		{"char device", []testimage.File{
			{Name: "dev/mem", Type: tar.TypeChar, Major: 1, Minor: 1}},
			`tar entry "dev/mem": device node 1:1`},
		{"block device", []testimage.File{
			{Name: "sda", Type: tar.TypeBlock, Major: 8, Minor: 0}},
			"device node 8:0"},
		{"whiteout named ..", []testimage.File{{Name: "a/.wh...", Body: ""}},
			"malformed whiteout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// A few good entries first, so a partial layer would exist.
			entries := append([]testimage.File{{Name: "ok/file", Body: "fine"}}, tc.entries...)
			_, err := s.storeLayer(bytes.NewReader(testimage.Tar(t, entries)), "")
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
	entries := []testimage.File{
		{Name: "./", Type: tar.TypeDir, Mode: 0o755},
		// A file under a directory the tar never lists.
		{Name: "implicit/dir/file", Body: "a"},
		// A read-only directory with a file in it: the mode must be set
		// after the file is written (matters when not root).
		{Name: "ro/", Type: tar.TypeDir, Mode: 0o555},
		{Name: "ro/file", Body: "b"},
		// A symlink may point anywhere: it is data, never followed here.
		{Name: "abs", Type: tar.TypeSymlink, Link: "/etc/passwd"},
		{Name: "up", Type: tar.TypeSymlink, Link: "../../.."},
		// A later entry replaces an earlier one, also a symlink, which
		// must be replaced and not written through.
		{Name: "replaced", Type: tar.TypeSymlink, Link: "/etc/passwd"},
		{Name: "replaced", Body: "new"},
		// Hardlinks within the layer.
		{Name: "bin/busybox", Body: "binary", Mode: 0o4755},
		{Name: "bin/sh", Type: tar.TypeLink, Link: "./bin/busybox"},
		{Name: "fifo", Type: tar.TypeFifo, Mode: 0o600},
		// A directory listed twice keeps its content.
		{Name: "twice/", Type: tar.TypeDir},
		{Name: "twice/kept", Body: "c"},
		{Name: "twice/", Type: tar.TypeDir, Mode: 0o700},
	}
	rec, err := s.storeLayer(bytes.NewReader(testimage.Tar(t, entries)), "")
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
		assert.Equal(t, testimage.ModTime, fi.ModTime().UTC(), p)
	}
	requireCleanTmp(t, s)

	// The same bytes again: already stored, no error, one copy.
	again, err := s.storeLayer(bytes.NewReader(testimage.Tar(t, entries)), rec.DiffID)
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
	rec, err := s.storeLayer(bytes.NewReader(testimage.Tar(t, []testimage.File{
		{Name: "home/", Type: tar.TypeDir, Uid: 1000, Gid: 1000},
		{Name: "home/f", Body: "x", Uid: 1000, Gid: 100, Mode: 0o2755},
		{Name: "home/l", Type: tar.TypeSymlink, Link: "f", Uid: 1001, Gid: 1002},
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

// TestLayerLimits: a layer that would write more bytes or more entries
// than the store's Limits is refused with ErrTooLarge, as it is pulled,
// and nothing of it stays: not in layers/, not in tmp/. A bomb of zeros
// compresses to almost nothing, so the bound is on what comes out.
func TestLayerLimits(t *testing.T) {
	many := make([]testimage.File, 11)
	for i := range many {
		many[i] = testimage.File{Name: fmt.Sprintf("f%d", i), Mode: 0o644}
	}
	big := []testimage.File{{Name: "zeros", Mode: 0o644, Body: string(make([]byte, 2<<20))}}
	reg := newRegistry(t)
	for name, files := range map[string][]testimage.File{"many": many, "big": big} {
		t.Run(name, func(t *testing.T) {
			s, err := Open(t.TempDir())
			require.NoError(t, err)
			s.Limits = Limits{Bytes: 1 << 20, Entries: 10}
			ref := reg.host + "/limits/" + name + ":1"
			testimage.Push(t, reg.host, "limits/"+name+":1", testimage.PlatformImage(t, HostPlatform(),
				imageConfig, testimage.Layer(t, files)))
			_, err = s.Pull(context.Background(), ref, PullOptions{})
			require.ErrorIs(t, err, ErrTooLarge)
			for _, dir := range []string{"layers", "tmp"} {
				entries, err := os.ReadDir(filepath.Join(s.Root(), dir))
				require.NoError(t, err)
				assert.Empty(t, entries, "%s/ holds what the refused layer wrote", dir)
			}
			// Within the limits, the same store takes it.
			s.Limits = DefaultLimits
			_, err = s.Pull(context.Background(), ref, PullOptions{})
			require.NoError(t, err)
		})
	}
}

// TestSparseLayerLimit: a PAX sparse entry (GNU sparse 1.0) of a few
// hundred bytes in the tar says it is 100 MB of file, mostly holes,
// which the unpacker writes as zeros. The limit counts what is written,
// so it is refused too. (Go's tar writer does not write sparse entries:
// the records are written under other keys of the same length, and
// renamed in the bytes.)
func TestSparseLayerLimit(t *testing.T) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	const real = 100 << 20
	// The data starts with the map of the file's data: 1 region, at
	// the end, of 1 byte; padded to a block.
	sparseMap := fmt.Sprintf("1\n%d\n1\n", real-1)
	data := sparseMap + string(make([]byte, 512-len(sparseMap))) + "x"
	require.NoError(t, tw.WriteHeader(&tar.Header{
		Typeflag: tar.TypeReg, Name: "GNUSparseFile.0/big", Mode: 0o644, Size: int64(len(data)),
		Format: tar.FormatPAX, PAXRecords: map[string]string{
			"XNU.sparse.major": "1", "XNU.sparse.minor": "0",
			"XNU.sparse.name": "big", "XNU.sparse.realsize": fmt.Sprint(real)}}))
	_, err := tw.Write([]byte(data))
	require.NoError(t, err)
	require.NoError(t, tw.Close())
	layer := bytes.ReplaceAll(buf.Bytes(), []byte("XNU.sparse."), []byte("GNU.sparse."))
	require.Less(t, len(layer), 8<<10)

	s, err := Open(t.TempDir())
	require.NoError(t, err)
	s.Limits = Limits{Bytes: 1 << 20, Entries: 10}
	_, err = s.storeLayer(bytes.NewReader(layer), "")
	require.ErrorIs(t, err, ErrTooLarge)
	entries, err := os.ReadDir(filepath.Join(s.Root(), "tmp"))
	require.NoError(t, err)
	assert.Empty(t, entries, "the partial layer is gone")

	// Within the limits, it unpacks to the whole file.
	s.Limits = DefaultLimits
	rec, err := s.storeLayer(bytes.NewReader(layer), "")
	require.NoError(t, err)
	assert.Equal(t, int64(real), rec.Size)
}

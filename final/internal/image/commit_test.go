package image

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gocell/gocell/internal/celltest"
	"github.com/gocell/gocell/internal/testimage"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// requireWhiteout checks that p is overlayfs's whiteout: char device 0/0.
func requireWhiteout(t *testing.T, p string) {
	t.Helper()
	var st unix.Stat_t
	require.NoError(t, unix.Lstat(p, &st), p)
	assert.Equal(t, uint32(unix.S_IFCHR), st.Mode&unix.S_IFMT, "%s is a char device", p)
	assert.Equal(t, uint64(0), st.Rdev, "%s is 0/0", p)
}

// requireOpaque checks the opaque xattr on dir.
func requireOpaque(t *testing.T, dir string) {
	t.Helper()
	buf := make([]byte, 8)
	n, err := unix.Lgetxattr(dir, opaqueXattr, buf)
	require.NoError(t, err, dir)
	assert.Equal(t, "y", string(buf[:n]))
}

// mountLayers mounts dirs (top first) read-only with overlayfs and returns
// the mount point; unmounted when the test ends.
func mountLayers(t *testing.T, dirs []string) string {
	t.Helper()
	if len(dirs) == 1 { // overlayfs wants two lower layers without an upper
		dirs = append(dirs, t.TempDir())
	}
	target := t.TempDir()
	// Equivalent to: mount -t overlay overlay -o lowerdir=top:…:bottom target
	err := unix.Mount("overlay", target, "overlay", unix.MS_RDONLY,
		"lowerdir="+strings.Join(dirs, ":"))
	require.NoError(t, err, "mount overlay")
	t.Cleanup(func() { assert.NoError(t, unix.Unmount(target, unix.MNT_DETACH)) })
	return target
}

// exists reports whether p exists (without following a final symlink).
func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

func TestWhiteoutTranslation(t *testing.T) {
	celltest.RequirePriv(t)
	s := newStore(t)
	lower, err := s.storeLayer(bytes.NewReader(testimage.Tar(t, []testimage.File{
		{Name: "a/keep", Body: "k"},
		{Name: "a/gone", Body: "g"},
		{Name: "d/old", Body: "o"},
		{Name: "d/sub/deep", Body: "d"},
	})), "")
	require.NoError(t, err)
	upper, err := s.storeLayer(bytes.NewReader(testimage.Tar(t, []testimage.File{
		{Name: "a/.wh.gone"},
		{Name: "d/", Type: tar.TypeDir},
		{Name: "d/.wh..wh..opq"},
		{Name: "d/new", Body: "n"},
		{Name: ".wh..wh.plnk/", Type: tar.TypeDir}, // aufs bookkeeping: ignored
		// A whiteout for a name this same layer has hides only lower
		// layers: the layer's own file stays.
		{Name: "a/same", Body: "s"},
		{Name: "a/.wh.same"},
	})), "")
	require.NoError(t, err)

	dir, err := s.layerDir(upper.DiffID)
	require.NoError(t, err)
	requireWhiteout(t, filepath.Join(dir, "a/gone"))
	requireOpaque(t, filepath.Join(dir, "d"))
	assert.False(t, exists(filepath.Join(dir, "a/.wh.gone")))
	assert.False(t, exists(filepath.Join(dir, "d/.wh..wh..opq")))
	assert.False(t, exists(filepath.Join(dir, ".wh..wh.plnk")))
	b, err := os.ReadFile(filepath.Join(dir, "a/same"))
	require.NoError(t, err)
	assert.Equal(t, "s", string(b))

	// What the kernel makes of it.
	lowerDir, err := s.layerDir(lower.DiffID)
	require.NoError(t, err)
	root := mountLayers(t, []string{dir, lowerDir})
	assert.True(t, exists(filepath.Join(root, "a/keep")))
	assert.False(t, exists(filepath.Join(root, "a/gone")), "whiteout hides the lower file")
	assert.False(t, exists(filepath.Join(root, "d/old")), "opaque dir hides lower content")
	assert.False(t, exists(filepath.Join(root, "d/sub")))
	assert.True(t, exists(filepath.Join(root, "d/new")))
}

func TestCommit(t *testing.T) {
	celltest.RequirePriv(t)
	reg := newRegistry(t)
	reg.push(t, "x/bb:1", busyboxImage(t))
	s := newStore(t)
	base, err := s.Pull(context.Background(), reg.host+"/x/bb:1", PullOptions{})
	require.NoError(t, err)

	// An overlayfs upper dir as a container leaves it: a new file, a
	// deleted one (whiteout), a replaced directory (opaque), hardlinks.
	upper := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(upper, "new.txt"), []byte("hi"), 0o640))
	require.NoError(t, os.Chown(filepath.Join(upper, "new.txt"), 1000, 1000))
	require.NoError(t, os.Mkdir(filepath.Join(upper, "bin"), 0o755))
	require.NoError(t, unix.Mknod(filepath.Join(upper, "bin/ls"), unix.S_IFCHR, 0))
	require.NoError(t, os.Mkdir(filepath.Join(upper, "etc"), 0o755))
	require.NoError(t, unix.Setxattr(filepath.Join(upper, "etc"), opaqueXattr, []byte("y"), 0))
	require.NoError(t, os.WriteFile(filepath.Join(upper, "etc/hostname"), []byte("box\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(upper, "h1"), []byte("same"), 0o644))
	require.NoError(t, os.Link(filepath.Join(upper, "h1"), filepath.Join(upper, "h2")))

	cfg := base.Config
	cfg.Cmd = []string{"/bin/cat", "/new.txt"}
	cfg.Env = append(cfg.Env, "COMMITTED=1")
	img, err := s.Commit(base, upper, "committed:1", cfg)
	require.NoError(t, err)
	assert.Equal(t, []string{"docker.io/library/committed:1"}, img.RepoTags)
	assert.Equal(t, cfg, img.Config)
	require.Len(t, img.Layers, 2)
	assert.Equal(t, base.Layers[0], img.Layers[0])
	raw, err := os.ReadFile(s.path("images", img.ID[7:], "config.json"))
	require.NoError(t, err)
	assert.Equal(t, digestOf(raw), img.ID)

	// The layer tar speaks OCI: whiteouts as .wh. files.
	var buf bytes.Buffer
	require.NoError(t, writeLayerTar(&buf, upper))
	sum := sha256.Sum256(buf.Bytes())
	assert.Equal(t, "sha256:"+hex.EncodeToString(sum[:]), img.Layers[1],
		"the DiffID is the sha256 of that tar")
	hdrs := map[string]*tar.Header{}
	tr := tar.NewReader(&buf)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		hdrs[h.Name] = h
	}
	assert.Contains(t, hdrs, "bin/.wh.ls")
	assert.NotContains(t, hdrs, "bin/ls")
	assert.Contains(t, hdrs, "etc/.wh..wh..opq")
	assert.Equal(t, byte(tar.TypeLink), hdrs["h2"].Typeflag)
	assert.Equal(t, "h1", hdrs["h2"].Linkname)
	assert.Equal(t, 1000, hdrs["new.txt"].Uid)
	assert.Empty(t, hdrs["new.txt"].Uname, "no host user names")
	for name, h := range hdrs {
		_, trusted := h.PAXRecords["SCHILY.xattr."+opaqueXattr]
		assert.False(t, trusted, "%s carries no overlay xattr", name)
	}

	// Stored back in overlayfs form, and the image reads as expected.
	dirs, err := s.LayerDirs(img)
	require.NoError(t, err)
	requireWhiteout(t, filepath.Join(dirs[0], "bin/ls"))
	requireOpaque(t, filepath.Join(dirs[0], "etc"))
	root := mountLayers(t, dirs)
	assert.False(t, exists(filepath.Join(root, "bin/ls")))
	assert.True(t, exists(filepath.Join(root, "bin/busybox")))
	assert.False(t, exists(filepath.Join(root, "etc/passwd")), "etc was replaced")
	assert.True(t, exists(filepath.Join(root, "etc/hostname")))
	b, err := os.ReadFile(filepath.Join(root, "new.txt"))
	require.NoError(t, err)
	assert.Equal(t, "hi", string(b))

	// Removing the committed image keeps the base's layer.
	require.NoError(t, s.Remove("committed:1"))
	assert.Len(t, dirEntries(t, s.path("layers")), 1)

	// Device nodes cannot be committed, as they cannot be pulled.
	require.NoError(t, unix.Mknod(filepath.Join(upper, "null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
	_, err = s.Commit(base, upper, "", cfg)
	require.ErrorContains(t, err, "null: device nodes cannot be committed")
	assert.Len(t, dirEntries(t, s.path("layers")), 1)
	assert.Empty(t, dirEntries(t, s.path("tmp")))
}

// TestCommitFromScratch needs no root: no whiteouts, no foreign owners.
func TestCommitFromScratch(t *testing.T) {
	s := newStore(t)
	upper := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(upper, "app"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(upper, "app/run"), []byte("#!/bin/sh\n"), 0o755))
	require.NoError(t, os.Symlink("run", filepath.Join(upper, "app/start")))
	img, err := s.Commit(nil, upper, "", Config{Cmd: []string{"/app/run"}})
	require.NoError(t, err)
	assert.Empty(t, img.RepoTags)
	assert.Len(t, img.Layers, 1)
	assert.Equal(t, HostPlatform().Architecture, img.Architecture)
	assert.Equal(t, []string{"/app/run"}, img.Config.Cmd)
	dirs, err := s.LayerDirs(img)
	require.NoError(t, err)
	target, err := os.Readlink(filepath.Join(dirs[0], "app/start"))
	require.NoError(t, err)
	assert.Equal(t, "run", target)

	_, err = s.Commit(nil, upper, "Bad Tag", Config{})
	require.ErrorIs(t, err, ErrInvalidReference)
	_, err = s.Commit(nil, filepath.Join(upper, "missing"), "", Config{})
	require.ErrorIs(t, err, os.ErrNotExist)
	assert.Empty(t, dirEntries(t, s.path("tmp")))
}

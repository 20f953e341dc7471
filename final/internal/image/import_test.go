package image

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/gocell/gocell/internal/testimage"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestImportDockerSave(t *testing.T) {
	a := busyboxImage(t)
	b := busyboxImage(t, testimage.Layer(t, []testimage.File{{Name: "b", Body: "b"}}))
	dir := t.TempDir()
	multi := filepath.Join(dir, "multi.tar")
	ta, err := name.NewTag("example.com/a:1")
	require.NoError(t, err)
	tb, err := name.NewTag("b") // docker save writes "b:latest"
	require.NoError(t, err)
	require.NoError(t, tarball.MultiRefWriteToFile(multi,
		map[name.Reference]v1.Image{ta: a, tb: b}))

	s := newStore(t)
	imgs, err := s.Import(context.Background(), multi, "")
	require.NoError(t, err)
	require.Len(t, imgs, 2)
	byTag := map[string]*Image{}
	for _, img := range imgs {
		for _, tag := range img.RepoTags {
			byTag[tag] = img
		}
		assert.Empty(t, img.Digest, "imported images were not pulled by digest")
	}
	idA, err := a.ConfigName()
	require.NoError(t, err)
	require.Contains(t, byTag, "example.com/a:1")
	require.Contains(t, byTag, "docker.io/library/b:latest")
	assert.Equal(t, idA.String(), byTag["example.com/a:1"].ID)
	assert.Len(t, dirEntries(t, s.path("layers")), 2, "busybox layer shared")
	dirs, err := s.LayerDirs(byTag["docker.io/library/b:latest"])
	require.NoError(t, err)
	_, err = os.Stat(filepath.Join(dirs[0], "b"))
	require.NoError(t, err)

	// More than one image cannot take one tag.
	_, err = s.Import(context.Background(), multi, "x:1")
	require.ErrorContains(t, err, "holds 2 images")

	// A single gzipped archive, with a tag given on import.
	single := filepath.Join(dir, "single.tar.gz")
	f, err := os.Create(single)
	require.NoError(t, err)
	zw := gzip.NewWriter(f)
	require.NoError(t, tarball.Write(ta, a, zw))
	require.NoError(t, zw.Close())
	require.NoError(t, f.Close())
	s2 := newStore(t)
	imgs, err = s2.Import(context.Background(), single, "local/copy:2")
	require.NoError(t, err)
	require.Len(t, imgs, 1)
	assert.Equal(t, []string{"docker.io/local/copy:2", "example.com/a:1"}, imgs[0].RepoTags)
	assert.Empty(t, dirEntries(t, s2.path("tmp")))
}

// writeLayout writes img into an OCI layout at dir, with annotations.
func writeLayout(t *testing.T, dir string, img v1.Image, ann map[string]string) {
	p, err := layout.Write(dir, empty.Index)
	require.NoError(t, err)
	require.NoError(t, p.AppendImage(img, layout.WithAnnotations(ann)))
}

func TestImportOCILayout(t *testing.T) {
	img := busyboxImage(t)
	id, err := img.ConfigName()
	require.NoError(t, err)

	t.Run("directory", func(t *testing.T) {
		dir := t.TempDir()
		writeLayout(t, dir, img, map[string]string{
			"io.containerd.image.name":          "127.0.0.1:5000/x/y:1",
			"org.opencontainers.image.ref.name": "1",
		})
		s := newStore(t)
		imgs, err := s.Import(context.Background(), dir, "")
		require.NoError(t, err)
		require.Len(t, imgs, 1)
		assert.Equal(t, id.String(), imgs[0].ID)
		assert.Equal(t, []string{"127.0.0.1:5000/x/y:1"}, imgs[0].RepoTags)
		assert.Equal(t, []string{"/bin/sh"}, imgs[0].Config.Cmd)
	})

	t.Run("tar of a layout with a multi-platform index", func(t *testing.T) {
		dir := t.TempDir()
		host, other := HostPlatform(), otherPlatform()
		idx := mutate.AppendManifests(empty.Index,
			mutate.IndexAddendum{Add: testimage.PlatformImage(t, other, imageConfig, testimage.BusyboxLayer(t)),
				Descriptor: v1.Descriptor{Platform: &other}},
			mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &host}})
		p, err := layout.Write(dir, empty.Index)
		require.NoError(t, err)
		require.NoError(t, p.AppendIndex(idx))
		archive := filepath.Join(t.TempDir(), "layout.tar")
		tarDir(t, dir, archive)

		s := newStore(t)
		imgs, err := s.Import(context.Background(), archive, "example.com/multi:1")
		require.NoError(t, err)
		require.Len(t, imgs, 1)
		assert.Equal(t, id.String(), imgs[0].ID, "the host's platform")
		assert.Equal(t, []string{"example.com/multi:1"}, imgs[0].RepoTags)
		assert.Empty(t, dirEntries(t, s.path("tmp")))
	})

	t.Run("not an archive", func(t *testing.T) {
		s := newStore(t)
		junk := filepath.Join(t.TempDir(), "junk.tar")
		require.NoError(t, os.WriteFile(junk, testimage.Tar(t, []testimage.File{{Name: "x", Body: "x"}}), 0o644))
		_, err := s.Import(context.Background(), junk, "")
		require.ErrorContains(t, err, "neither a docker save archive")
		_, err = s.Import(context.Background(), t.TempDir(), "")
		require.ErrorContains(t, err, "not an OCI image layout")
		_, err = s.Import(context.Background(), junk+".missing", "")
		require.ErrorIs(t, err, fs.ErrNotExist)
		requireClean(t, s)
	})
}

// tarDir writes the files under dir into a tar at out, as `tar -C dir -cf
// out .` would.
func tarDir(t *testing.T, dir, out string) {
	f, err := os.Create(out)
	require.NoError(t, err)
	defer f.Close()
	tw := tar.NewWriter(f)
	require.NoError(t, filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		info, err := d.Info()
		if err != nil {
			return err
		}
		hdr, err := tar.FileInfoHeader(info, "")
		if err != nil {
			return err
		}
		hdr.Name = "./" + filepath.ToSlash(rel)
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if d.Type().IsRegular() {
			src, err := os.Open(p)
			if err != nil {
				return err
			}
			defer src.Close()
			_, err = io.Copy(tw, src)
			return err
		}
		return nil
	}))
	require.NoError(t, tw.Close())
}

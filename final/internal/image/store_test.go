package image

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/gocell/gocell/internal/testimage"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSharedLayersAndRemove(t *testing.T) {
	reg := newRegistry(t)
	extra := testimage.Layer(t, []testimage.File{{Name: "etc/motd", Body: "hello\n"}})
	reg.push(t, "x/base:1", busyboxImage(t))
	reg.push(t, "x/app:1", busyboxImage(t, extra))
	s := newStore(t)
	base, err := s.Pull(context.Background(), reg.host+"/x/base:1", PullOptions{})
	require.NoError(t, err)
	app, err := s.Pull(context.Background(), reg.host+"/x/app:1", PullOptions{})
	require.NoError(t, err)

	require.Equal(t, base.Layers[0], app.Layers[0])
	assert.Len(t, dirEntries(t, s.path("layers")), 2, "the shared layer is stored once")
	baseDirs, err := s.LayerDirs(base)
	require.NoError(t, err)
	appDirs, err := s.LayerDirs(app)
	require.NoError(t, err)
	require.Len(t, appDirs, 2)
	assert.Equal(t, baseDirs[0], appDirs[1], "same directory; top layer first")
	_, err = os.Stat(filepath.Join(appDirs[0], "etc/motd"))
	require.NoError(t, err)

	// Remove the base image: its layer stays, app uses it.
	require.NoError(t, s.Remove(reg.host+"/x/base:1"))
	_, err = s.Get(base.ID)
	require.ErrorIs(t, err, ErrNotFound)
	_, err = s.Get(reg.host + "/x/base@" + base.Digest)
	require.ErrorIs(t, err, ErrNotFound, "digest names go with the image")
	assert.Len(t, dirEntries(t, s.path("layers")), 2)
	_, err = os.Stat(appDirs[1])
	require.NoError(t, err)

	// Remove app by ID prefix: everything goes.
	require.NoError(t, s.Remove(app.ID[7:19]))
	imgs, err := s.List()
	require.NoError(t, err)
	assert.Empty(t, imgs)
	assert.Empty(t, dirEntries(t, s.path("images")))
	requireClean(t, s)
	r, err := s.readRefs()
	require.NoError(t, err)
	assert.Empty(t, r)
}

func TestTagUntag(t *testing.T) {
	reg := newRegistry(t)
	reg.push(t, "x/y:1", busyboxImage(t))
	reg.push(t, "x/z:1", busyboxImage(t, testimage.Layer(t, []testimage.File{{Name: "z", Body: "z"}})))
	s := newStore(t)
	y, err := s.Pull(context.Background(), reg.host+"/x/y:1", PullOptions{})
	require.NoError(t, err)
	z, err := s.Pull(context.Background(), reg.host+"/x/z:1", PullOptions{})
	require.NoError(t, err)

	require.NoError(t, s.Tag(reg.host+"/x/y:1", "mine:v1"))
	got, err := s.Get("mine:v1")
	require.NoError(t, err)
	assert.Equal(t, y.ID, got.ID)
	assert.Equal(t, []string{reg.host + "/x/y:1", "docker.io/library/mine:v1"}, got.RepoTags)

	// Like docker tag, an existing name moves to the new image.
	require.NoError(t, s.Tag(z.ID, "mine:v1"))
	got, err = s.Get("docker.io/library/mine:v1")
	require.NoError(t, err)
	assert.Equal(t, z.ID, got.ID)

	require.ErrorIs(t, s.Tag("nope:1", "x"), ErrNotFound)
	require.ErrorIs(t, s.Tag(y.ID, "Bad"), ErrInvalidReference)
	require.ErrorIs(t, s.Tag(y.ID, "x@sha256:"+y.ID[7:]), ErrInvalidReference)

	// Untag keeps the image even with no tag left.
	require.NoError(t, s.Untag(reg.host+"/x/y:1"))
	got, err = s.Get(y.ID)
	require.NoError(t, err)
	assert.Empty(t, got.RepoTags)
	require.ErrorIs(t, s.Untag(reg.host+"/x/y:1"), ErrNotFound)

	// Remove by one of two names keeps the image.
	require.NoError(t, s.Remove("mine:v1"))
	got, err = s.Get(z.ID)
	require.NoError(t, err)
	assert.Equal(t, []string{reg.host + "/x/z:1"}, got.RepoTags)

	// Lookups that fail.
	for ref, want := range map[string]error{
		"abc":                ErrNotFound, // too short a prefix, and no such name
		"sha256:abc":         ErrNotFound,
		"nope":               ErrNotFound,
		"sha256:xyz":         ErrInvalidReference,
		"UPPER":              ErrInvalidReference,
		"docker.io/x/y:none": ErrNotFound,
	} {
		_, err := s.Get(ref)
		assert.ErrorIs(t, err, want, ref)
	}
	require.ErrorIs(t, s.Remove("nope"), ErrNotFound)
}

func TestOpenLayout(t *testing.T) {
	root := filepath.Join(t.TempDir(), "gocell")
	s, err := Open(root)
	require.NoError(t, err)
	assert.Equal(t, root, s.Root())
	assert.ElementsMatch(t, []string{"images", "layers", "tmp"}, dirEntries(t, root))
	imgs, err := s.List()
	require.NoError(t, err)
	assert.Empty(t, imgs)
	// Reopening an existing store is fine.
	_, err = Open(root)
	require.NoError(t, err)
}

package image

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gocell/gocell/internal/testimage"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPullByTag(t *testing.T) {
	reg := newRegistry(t)
	img := busyboxImage(t)
	dg := reg.push(t, "x/busybox:1", img)
	s := newStore(t)

	var out bytes.Buffer
	got, err := s.Pull(context.Background(), reg.host+"/x/busybox:1",
		PullOptions{Progress: &out, Timeout: 5 * time.Second})
	require.NoError(t, err)

	cfgName, err := img.ConfigName()
	require.NoError(t, err)
	assert.Equal(t, cfgName.String(), got.ID)
	assert.Equal(t, []string{reg.host + "/x/busybox:1"}, got.RepoTags)
	assert.Equal(t, []string{reg.host + "/x/busybox@" + dg.String()}, got.RepoDigests)
	assert.Equal(t, dg.String(), got.Digest)
	assert.Equal(t, []string{"/bin/sh"}, got.Config.Cmd)
	assert.Equal(t, []string{"PATH=/bin", "HOME=/root"}, got.Config.Env)
	assert.Equal(t, "/", got.Config.WorkingDir)
	assert.Equal(t, "0:0", got.Config.User)
	assert.Equal(t, testimage.ModTime, got.Created.UTC())
	diffID, err := testimage.BusyboxLayer(t).DiffID()
	require.NoError(t, err)
	assert.Equal(t, []string{diffID.String()}, got.Layers)
	busybox, err := os.ReadFile(testimage.Busybox(t))
	require.NoError(t, err)
	assert.Equal(t, int64(len(busybox)+len(testimage.Passwd)+len(testimage.Group)), got.Size,
		"the bytes of the layer's regular files")

	// The progress is plain lines: a bytes.Buffer is no terminal.
	assert.Contains(t, out.String(), "pulling "+reg.host+"/x/busybox:1 from registry "+reg.host)
	assert.Contains(t, out.String(), "layer sha256:"+diffID.Hex[:12]+" ")
	assert.Contains(t, out.String(), " MB done\n")
	assert.NotContains(t, out.String(), "\x1b[")

	dirs, err := s.LayerDirs(got)
	require.NoError(t, err)
	require.Len(t, dirs, 1)
	bb, err := os.Stat(filepath.Join(dirs[0], "bin/busybox"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o755), bb.Mode().Perm())
	assert.Equal(t, testimage.ModTime, bb.ModTime().UTC())
	link, err := os.Readlink(filepath.Join(dirs[0], "bin/sh"))
	require.NoError(t, err)
	assert.Equal(t, "/bin/busybox", link)
	pw, err := os.ReadFile(filepath.Join(dirs[0], "etc/passwd"))
	require.NoError(t, err)
	assert.Equal(t, testimage.Passwd, string(pw))

	// Found again by every name Get knows.
	for _, ref := range []string{reg.host + "/x/busybox:1", got.ID,
		got.ID[len("sha256:"):], got.ID[7:11], got.ShortID(),
		reg.host + "/x/busybox@" + dg.String()} {
		again, err := s.Get(ref)
		require.NoError(t, err, ref)
		assert.Equal(t, got.ID, again.ID, ref)
	}

	// A second pull finds the layer stored.
	out.Reset()
	_, err = s.Pull(context.Background(), reg.host+"/x/busybox:1", PullOptions{Progress: &out})
	require.NoError(t, err)
	assert.Contains(t, out.String(), "layer sha256:"+diffID.Hex[:12]+" already exists")
	assert.Empty(t, dirEntries(t, s.path("tmp")))
}

func TestPullByDigest(t *testing.T) {
	reg := newRegistry(t)
	dg := reg.push(t, "x/y:1", busyboxImage(t))
	s := newStore(t)
	ref := reg.host + "/x/y@" + dg.String()
	got, err := s.Pull(context.Background(), ref, PullOptions{})
	require.NoError(t, err)
	assert.Empty(t, got.RepoTags, "a pull by digest adds no tag")
	assert.Equal(t, []string{ref}, got.RepoDigests)
	assert.Equal(t, dg.String(), got.Digest)
	_, err = s.Get(ref)
	require.NoError(t, err)
	_, err = s.Get(reg.host + "/x/y:1")
	require.ErrorIs(t, err, ErrNotFound)

	// A digest the registry does not have.
	_, err = s.Pull(context.Background(), reg.host+"/x/y@sha256:"+strings.Repeat("0", 64), PullOptions{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "MANIFEST_UNKNOWN")
}

// otherPlatform is a platform that is not the host's.
func otherPlatform() v1.Platform {
	if HostPlatform().Architecture == "arm64" {
		return v1.Platform{OS: "linux", Architecture: "amd64"}
	}
	return v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}
}

func TestPullMultiPlatform(t *testing.T) {
	reg := newRegistry(t)
	host, other := HostPlatform(), otherPlatform()
	marker := func(p v1.Platform) v1.Layer {
		return testimage.Layer(t, []testimage.File{{Name: "etc/arch", Body: p.String()}})
	}
	hostImg := testimage.PlatformImage(t, host, imageConfig, testimage.BusyboxLayer(t), marker(host))
	otherImg := testimage.PlatformImage(t, other, imageConfig, testimage.BusyboxLayer(t), marker(other))
	idx := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: otherImg, Descriptor: v1.Descriptor{Platform: &other}},
		mutate.IndexAddendum{Add: hostImg, Descriptor: v1.Descriptor{Platform: &host}},
	)
	testimage.PushIndex(t, reg.host, "multi/bb:1", idx)
	idxDigest, err := idx.Digest()
	require.NoError(t, err)

	s := newStore(t)
	archOf := func(img *Image) string {
		dirs, err := s.LayerDirs(img)
		require.NoError(t, err)
		b, err := os.ReadFile(filepath.Join(dirs[0], "etc/arch")) // top first
		require.NoError(t, err)
		return string(b)
	}

	got, err := s.Pull(context.Background(), reg.host+"/multi/bb:1", PullOptions{})
	require.NoError(t, err)
	assert.Equal(t, host.String(), archOf(got), "host platform by default")
	assert.Equal(t, host.Architecture, got.Architecture)
	assert.Equal(t, idxDigest.String(), got.Digest, "the digest pulled by is the index's")

	got, err = s.Pull(context.Background(), reg.host+"/multi/bb:1", PullOptions{Platform: other})
	require.NoError(t, err)
	assert.Equal(t, other.String(), archOf(got))
	assert.Equal(t, other.Architecture, got.Architecture)

	_, err = s.Pull(context.Background(), reg.host+"/multi/bb:1",
		PullOptions{Platform: v1.Platform{OS: "linux", Architecture: "s390x"}})
	require.ErrorIs(t, err, ErrNotFound)
	assert.Contains(t, err.Error(), "no image for linux/s390x")
}

// dockerHub makes a store whose Docker Hub is reg, and pushes busybox to
// both reg and each mirror as library/busybox:latest.
func pushHub(t *testing.T, regs ...*testRegistry) {
	for _, r := range regs {
		r.push(t, "library/busybox:latest", busyboxImage(t))
	}
}

func TestPullMirrors(t *testing.T) {
	hub, mirror, empty := newRegistry(t), newRegistry(t), newRegistry(t)
	pushHub(t, hub, mirror)

	t.Run("down mirror skipped, up mirror used", func(t *testing.T) {
		s := newStore(t)
		s.hub = hub.host
		hubBefore, mirrorBefore := hub.hits.Load(), mirror.hits.Load()
		var out bytes.Buffer
		img, err := s.Pull(context.Background(), "busybox", PullOptions{
			Mirrors:  []string{"http://" + deadAddr(t), mirror.host},
			Progress: &out,
		})
		require.NoError(t, err)
		assert.Equal(t, []string{"docker.io/library/busybox:latest"}, img.RepoTags)
		assert.Greater(t, mirror.hits.Load(), mirrorBefore+2, "manifest, config and layer from the mirror")
		assert.Equal(t, hubBefore, hub.hits.Load(), "Docker Hub not asked")
		assert.Contains(t, out.String(), "connection refused; trying mirror "+mirror.host)
		assert.Contains(t, out.String(), "pulling busybox:latest from mirror "+mirror.host)
	})

	t.Run("mirrors fail, origin used", func(t *testing.T) {
		s := newStore(t)
		s.hub = hub.host
		hubBefore := hub.hits.Load()
		var out bytes.Buffer
		_, err := s.Pull(context.Background(), "library/busybox:latest", PullOptions{
			Mirrors:  []string{deadAddr(t), empty.host},
			Progress: &out,
		})
		require.NoError(t, err)
		assert.Greater(t, hub.hits.Load(), hubBefore)
		assert.Greater(t, empty.hits.Load(), int64(0), "the mirror without the image was asked")
		assert.Contains(t, out.String(), "mirror "+empty.host+" failed")
		assert.Contains(t, out.String(), "pulling busybox:latest from registry "+hub.host)
	})

	t.Run("mirrors are for Docker Hub only", func(t *testing.T) {
		s := newStore(t)
		before := mirror.hits.Load()
		_, err := s.Pull(context.Background(), hub.host+"/library/busybox:latest",
			PullOptions{Mirrors: []string{mirror.host}})
		require.NoError(t, err)
		assert.Equal(t, before, mirror.hits.Load())
	})

	t.Run("silent mirror costs one timeout", func(t *testing.T) {
		s := newStore(t)
		s.hub = hub.host
		start := time.Now()
		_, err := s.Pull(context.Background(), "busybox", PullOptions{
			Mirrors: []string{silentAddr(t)},
			Timeout: 300 * time.Millisecond,
		})
		require.NoError(t, err)
		assert.Less(t, time.Since(start), 3*time.Second)
	})

	t.Run("bad mirror setting", func(t *testing.T) {
		_, err := newStore(t).Pull(context.Background(), "busybox",
			PullOptions{Mirrors: []string{"ftp://x"}})
		require.Error(t, err)
		assert.Contains(t, err.Error(), `mirror "ftp://x"`)
	})
}

func TestPullUnreachable(t *testing.T) {
	s := newStore(t)
	t.Run("closed port", func(t *testing.T) {
		addr := deadAddr(t)
		start := time.Now()
		_, err := s.Pull(context.Background(), addr+"/x/y:1", PullOptions{Timeout: time.Second})
		require.Error(t, err)
		assert.Less(t, time.Since(start), 2*time.Second)
		assert.Contains(t, err.Error(), "pull "+addr+"/x/y:1: registry "+addr+": ")
		assert.Contains(t, err.Error(), "connection refused")
	})
	t.Run("no answer", func(t *testing.T) {
		addr := silentAddr(t)
		start := time.Now()
		_, err := s.Pull(context.Background(), addr+"/x/y:1",
			PullOptions{Timeout: 300 * time.Millisecond})
		require.Error(t, err)
		assert.Less(t, time.Since(start), 2*time.Second)
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Contains(t, err.Error(), "pull "+addr+"/x/y:1: registry "+addr+": no answer within 300ms")
	})
	t.Run("cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := s.Pull(ctx, silentAddr(t)+"/x/y:1", PullOptions{})
		assert.ErrorIs(t, err, context.Canceled)
	})
	t.Run("malformed reference", func(t *testing.T) {
		_, err := s.Pull(context.Background(), "Not/Valid", PullOptions{})
		require.ErrorIs(t, err, ErrInvalidReference)
		assert.Contains(t, err.Error(), `pull Not/Valid: "Not/Valid"`)
	})
	requireClean(t, s)
}

func TestConcurrentPulls(t *testing.T) {
	reg := newRegistry(t)
	reg.push(t, "x/y:1", busyboxImage(t))
	reg.push(t, "x/y:2", busyboxImage(t, testimage.Layer(t, []testimage.File{{Name: "two", Body: "2"}})))
	s := newStore(t)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.Pull(context.Background(), reg.host+"/x/y:"+[]string{"1", "2"}[i%2], PullOptions{})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	assert.Len(t, dirEntries(t, s.path("layers")), 2, "busybox stored once, plus the extra layer")
	assert.Empty(t, dirEntries(t, s.path("tmp")))
	imgs, err := s.List()
	require.NoError(t, err)
	assert.Len(t, imgs, 2)
}

func TestPullUnsafeLayerStoresNothing(t *testing.T) {
	reg := newRegistry(t)
	evil := testimage.Layer(t, []testimage.File{{Name: "../escape", Body: "x"}})
	reg.push(t, "x/evil:1", busyboxImage(t, evil))
	s := newStore(t)
	_, err := s.Pull(context.Background(), reg.host+"/x/evil:1", PullOptions{})
	require.ErrorIs(t, err, ErrUnsafeLayer)
	assert.Contains(t, err.Error(), `tar entry "../escape"`)
	_, err = s.Get(reg.host + "/x/evil:1")
	require.ErrorIs(t, err, ErrNotFound)
	imgs, err := s.List()
	require.NoError(t, err)
	assert.Empty(t, imgs)
	assert.Empty(t, dirEntries(t, s.path("tmp")))
	// The busybox layer may have been stored (layers are independent);
	// the bad one must not be.
	bad, err := evil.DiffID()
	require.NoError(t, err)
	_, err = os.Stat(s.path("layers", bad.Hex))
	assert.True(t, errors.Is(err, os.ErrNotExist))
}

func TestPullChecksDiffIDs(t *testing.T) {
	// A config that lies about its layer's DiffID: the manifest and
	// config digests are consistent, the content is not.
	reg := newRegistry(t)
	img := busyboxImage(t)
	cf, err := img.ConfigFile()
	require.NoError(t, err)
	cf = cf.DeepCopy()
	cf.RootFS.DiffIDs[0] = v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("1", 64)}
	liar, err := mutate.ConfigFile(img, cf)
	require.NoError(t, err)
	reg.push(t, "x/liar:1", liar)
	s := newStore(t)
	_, err = s.Pull(context.Background(), reg.host+"/x/liar:1", PullOptions{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "the image config says sha256:1111")
	requireClean(t, s)
}

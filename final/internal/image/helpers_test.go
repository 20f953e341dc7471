package image

import (
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/gocell/gocell/internal/testimage"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The tests build their images with internal/testimage, from the host's
// busybox-static: no image is ever downloaded, and every registry is an
// in-process one on 127.0.0.1.

// imageConfig is the config of the tests' images.
var imageConfig = v1.Config{
	Env:        []string{"PATH=/bin", "HOME=/root"},
	Cmd:        []string{"/bin/sh"},
	WorkingDir: "/",
	User:       "0:0",
}

// busyboxImage is busybox for the host platform, plus extra layers.
func busyboxImage(t testing.TB, extra ...v1.Layer) v1.Image {
	t.Helper()
	return testimage.PlatformImage(t, HostPlatform(), imageConfig,
		append([]v1.Layer{testimage.BusyboxLayer(t)}, extra...)...)
}

// testRegistry is an in-process registry on 127.0.0.1 that counts the
// requests it serves.
type testRegistry struct {
	host string // "127.0.0.1:PORT"
	hits atomic.Int64
}

// newRegistry starts a registry, stopped when the test ends.
func newRegistry(t testing.TB) *testRegistry {
	t.Helper()
	tr := &testRegistry{}
	tr.host = testimage.RegistryWith(t, func(*http.Request) { tr.hits.Add(1) })
	return tr
}

// push uploads img as repoTag and returns its digest.
func (r *testRegistry) push(t testing.TB, repoTag string, img v1.Image) v1.Hash {
	t.Helper()
	testimage.Push(t, r.host, repoTag, img)
	d, err := img.Digest()
	require.NoError(t, err)
	return d
}

// deadAddr is a 127.0.0.1 port nobody listens on: connections are refused.
func deadAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

// silentAddr is a 127.0.0.1 port that accepts connections and never
// answers: what a registry behind a broken network looks like.
func silentAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return l.Addr().String()
}

// newStore opens a store in a temp dir. Docker Hub is replaced by a dead
// local port, so no test can reach the internet even by mistake.
func newStore(t testing.TB) *Store {
	t.Helper()
	s, err := Open(t.TempDir())
	require.NoError(t, err)
	// Runs before TempDir's own cleanup, which could not delete
	// read-only layer directories when not root.
	t.Cleanup(func() { assert.NoError(t, removeAll(s.root)) })
	s.hub = deadAddr(t)
	return s
}

// dirEntries lists the names in dir.
func dirEntries(t testing.TB, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	require.NoError(t, err)
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

// requireClean checks that no layer, image or temporary file is left.
func requireClean(t testing.TB, s *Store) {
	t.Helper()
	require.Empty(t, dirEntries(t, s.path("layers")), "layers/")
	require.Empty(t, dirEntries(t, s.path("tmp")), "tmp/")
}

package image

import (
	"archive/tar"
	"bytes"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The tests build their images from the host's busybox-static: no image
// is ever downloaded, and every registry is an in-process one on
// 127.0.0.1.

// entry is one tar entry of a test layer.
type entry struct {
	name     string
	typ      byte
	body     string
	link     string
	mode     int64
	uid, gid int
	major    int64
	minor    int64
}

// mtime is the fixed modification time of test entries.
var mtime = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

// tarBytes builds an uncompressed tar of entries.
func tarBytes(t testing.TB, entries []entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		typ := e.typ
		if typ == 0 {
			typ = tar.TypeReg
		}
		mode := e.mode
		if mode == 0 {
			mode = 0o644
			if typ == tar.TypeDir {
				mode = 0o755
			}
		}
		hdr := &tar.Header{Name: e.name, Typeflag: typ, Linkname: e.link,
			Mode: mode, Uid: e.uid, Gid: e.gid, ModTime: mtime,
			Devmajor: e.major, Devminor: e.minor, Format: tar.FormatPAX}
		if typ == tar.TypeReg {
			hdr.Size = int64(len(e.body))
		}
		require.NoError(t, tw.WriteHeader(hdr))
		if typ == tar.TypeReg {
			_, err := tw.Write([]byte(e.body))
			require.NoError(t, err)
		}
	}
	require.NoError(t, tw.Close())
	return buf.Bytes()
}

// tarLayer is a gzip-compressed layer of entries.
func tarLayer(t testing.TB, entries ...entry) v1.Layer {
	t.Helper()
	b := tarBytes(t, entries)
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(b)), nil
	})
	require.NoError(t, err)
	return l
}

var (
	busyboxOnce  sync.Once
	busyboxBytes []byte
)

// busyboxEntries are a minimal busybox root: the static binary, two
// applet symlinks and /etc/passwd.
func busyboxEntries(t testing.TB) []entry {
	t.Helper()
	busyboxOnce.Do(func() {
		busyboxBytes, _ = os.ReadFile("/bin/busybox")
	})
	if len(busyboxBytes) == 0 {
		t.Skip("needs /bin/busybox (apt-get install busybox-static)")
	}
	return []entry{
		{name: "bin/", typ: tar.TypeDir},
		{name: "bin/busybox", body: string(busyboxBytes), mode: 0o755},
		{name: "bin/sh", typ: tar.TypeSymlink, link: "busybox"},
		{name: "bin/ls", typ: tar.TypeSymlink, link: "busybox"},
		{name: "etc/", typ: tar.TypeDir},
		{name: "etc/passwd", body: "root:x:0:0:root:/root:/bin/sh\n"},
	}
}

// busyboxLayer is the busybox root as a layer; built once, since
// compressing 2 MB takes a moment.
var (
	bbLayerOnce sync.Once
	bbLayer     v1.Layer
)

func busyboxLayer(t testing.TB) v1.Layer {
	t.Helper()
	entries := busyboxEntries(t)
	bbLayerOnce.Do(func() {
		l := tarLayer(t, entries...)
		// Compute digests once so the layer is cheap to reuse.
		if _, err := l.Digest(); err == nil {
			bbLayer = l
		}
	})
	require.NotNil(t, bbLayer)
	return bbLayer
}

// buildImage is an image of layers (bottom first) for platform p.
func buildImage(t testing.TB, p v1.Platform, layers ...v1.Layer) v1.Image {
	t.Helper()
	img, err := mutate.AppendLayers(empty.Image, layers...)
	require.NoError(t, err)
	cf, err := img.ConfigFile()
	require.NoError(t, err)
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Variant = p.OS, p.Architecture, p.Variant
	cf.Created = v1.Time{Time: mtime}
	cf.Config = v1.Config{
		Env:        []string{"PATH=/bin", "HOME=/root"},
		Cmd:        []string{"/bin/sh"},
		WorkingDir: "/",
		User:       "0:0",
	}
	img, err = mutate.ConfigFile(img, cf)
	require.NoError(t, err)
	return img
}

// busyboxImage is busybox for the host platform, plus extra layers.
func busyboxImage(t testing.TB, extra ...v1.Layer) v1.Image {
	t.Helper()
	return buildImage(t, HostPlatform(), append([]v1.Layer{busyboxLayer(t)}, extra...)...)
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
	h := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tr.hits.Add(1)
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	tr.host = strings.TrimPrefix(srv.URL, "http://")
	return tr
}

// push uploads img (or an index) as host/repo.
func push(t testing.TB, ref string, img v1.Image) v1.Hash {
	t.Helper()
	r, err := name.ParseReference(ref)
	require.NoError(t, err)
	require.NoError(t, remote.Write(r, img))
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

// remoteWriteIndex uploads an index as ref.
func remoteWriteIndex(ref string, idx v1.ImageIndex) error {
	r, err := name.ParseReference(ref)
	if err != nil {
		return err
	}
	return remote.WriteIndex(r, idx)
}

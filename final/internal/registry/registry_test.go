package registry

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// serve starts the registry kept in dir on a test server.
func serve(t *testing.T, dir string) (string, func()) {
	t.Helper()
	s, err := New(dir, nil)
	require.NoError(t, err)
	srv := httptest.NewServer(s)
	return strings.TrimPrefix(srv.URL, "http://"), srv.Close
}

// TestKeptAcrossRestarts: an image and an index pushed to one server are
// served, by tag and by digest, by the next one on the same directory;
// a deleted tag stays deleted.
func TestKeptAcrossRestarts(t *testing.T) {
	dir := t.TempDir()
	host, stop := serve(t, dir)
	img, err := random.Image(1024, 2)
	require.NoError(t, err)
	idx, err := random.Index(512, 1, 2)
	require.NoError(t, err)
	ref := func(host, s string) name.Reference {
		r, err := name.ParseReference(host+"/"+s, name.Insecure)
		require.NoError(t, err)
		return r
	}
	require.NoError(t, remote.Write(ref(host, "class/img:1"), img))
	require.NoError(t, remote.WriteIndex(ref(host, "class/idx:1"), idx))
	require.NoError(t, remote.Write(ref(host, "class/gone:1"), img))
	require.NoError(t, remote.Delete(ref(host, "class/gone:1")))
	stop()

	host, stop = serve(t, dir)
	defer stop()
	want, _ := img.Digest()
	got, err := remote.Head(ref(host, "class/img:1"))
	require.NoError(t, err)
	assert.Equal(t, want, got.Digest)
	_, err = remote.Head(ref(host, "class/img@"+want.String()))
	assert.NoError(t, err, "by digest too")
	back, err := remote.Image(ref(host, "class/img:1"))
	require.NoError(t, err)
	layers, err := back.Layers()
	require.NoError(t, err)
	for _, l := range layers {
		rc, err := l.Compressed()
		require.NoError(t, err, "the blobs are on disk")
		rc.Close()
	}
	wantIdx, _ := idx.Digest()
	gotIdx, err := remote.Head(ref(host, "class/idx:1"))
	require.NoError(t, err, "an index comes back after the manifests it lists")
	assert.Equal(t, wantIdx, gotIdx.Digest)
	_, err = remote.Head(ref(host, "class/gone:1"))
	assert.Error(t, err, "a deleted tag stays deleted")
}

// TestRefusesBadNames: a name that could lead the kept file out of the
// manifests' directory, or a manifest too large, is refused, and nothing
// is written.
func TestRefusesBadNames(t *testing.T) {
	dir := t.TempDir()
	host, stop := serve(t, dir)
	defer stop()
	for path, want := range map[string]int{
		"/v2/..%2F..%2Fetc/manifests/1": http.StatusBadRequest,
		"/v2/a/manifests/..":            http.StatusBadRequest,
		"/v2/Upper/manifests/1":         http.StatusBadRequest,
		"/v2/a/b/manifests/-x":          http.StatusBadRequest,
	} {
		req, err := http.NewRequest(http.MethodPut, "http://"+host+path, strings.NewReader("{}"))
		require.NoError(t, err)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, want, resp.StatusCode, path)
	}
	big := strings.NewReader(`{"x":"` + strings.Repeat("a", maxManifest) + `"}`)
	req, err := http.NewRequest(http.MethodPut, "http://"+host+"/v2/a/manifests/1", big)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)
	entries, err := os.ReadDir(filepath.Join(dir, "manifests"))
	require.NoError(t, err)
	assert.Empty(t, entries)
}

package registry

import (
	"encoding/json"
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

// TestRefusesWhatBreaksTheClass: writes from another machine (unless
// AllowPush), blob deletes, paths outside /v2/, a manifest whose digest
// or media type is not what it says; and a start is not kept from by a
// broken kept file or an index that lists a missing manifest.
func TestRefusesWhatBreaksTheClass(t *testing.T) {
	dir := t.TempDir()
	s, err := New(dir, nil)
	require.NoError(t, err)
	do := func(method, path, ctype, body, from string) int {
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		req.RemoteAddr = from
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		w := httptest.NewRecorder()
		s.ServeHTTP(w, req)
		return w.Code
	}
	const oci = "application/vnd.oci.image.manifest.v1+json"
	here, there := "127.0.0.1:4000", "192.0.2.7:4000"
	assert.Equal(t, http.StatusForbidden, do(http.MethodPut, "/v2/a/manifests/1", oci, "{}", there))
	assert.Equal(t, http.StatusForbidden, do(http.MethodPost, "/v2/a/blobs/uploads/", "", "", there))
	assert.Equal(t, http.StatusOK, do(http.MethodGet, "/v2/", "", "", there), "pulling is for everyone")
	assert.Equal(t, http.StatusMethodNotAllowed, do(http.MethodDelete, "/v2/a/blobs/sha256:"+strings.Repeat("0", 64), "", "", here))
	assert.Equal(t, http.StatusNotFound, do(http.MethodPut, "/zz/a/manifests/1", oci, "{}", here))
	assert.Equal(t, http.StatusBadRequest, do(http.MethodPut, "/v2/a/manifests/sha256:"+strings.Repeat("0", 64), oci, "{}", here))
	assert.Equal(t, http.StatusBadRequest, do(http.MethodPut, "/v2/a/manifests/1", "text/html", "{}", here))
	s.AllowPush = true
	assert.Equal(t, http.StatusCreated, do(http.MethodPut, "/v2/a/manifests/1", oci, `{"schemaVersion":2}`, there))

	// A broken kept file, and an index whose manifest is gone: left out,
	// and the rest served.
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "manifests", "broken"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "manifests", "broken", "@1"), []byte("not json"), 0o644))
	idx := `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[` +
		`{"mediaType":"` + oci + `","size":2,"digest":"sha256:` + strings.Repeat("1", 64) + `"}]}`
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "manifests", "orphan"), 0o755))
	rec, _ := json.Marshal(record{MediaType: "application/vnd.oci.image.index.v1+json", Manifest: []byte(idx)})
	require.NoError(t, os.WriteFile(filepath.Join(dir, "manifests", "orphan", "@1"), rec, 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "blobs", "upload-123"), []byte("half"), 0o644))
	s, err = New(dir, nil)
	require.NoError(t, err, "a start is not kept from by one bad record")
	assert.NoFileExists(t, filepath.Join(dir, "blobs", "upload-123"), "a cut-off upload is swept")
	assert.Equal(t, http.StatusOK, do(http.MethodGet, "/v2/a/manifests/1", "", "", there))
}

package main

import (
	"archive/tar"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	ggcr "github.com/google/go-containerregistry/pkg/registry"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// lockedBuffer is a bytes.Buffer that a process writes while a test reads.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// freePort is a TCP port on 127.0.0.1 that nothing listens on now.
func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// serveRegistry starts `gocell registry serve` with args, and returns once
// it answers on addr, and the function that stops it with SIGINT and
// returns what it printed.
func startRegistry(t *testing.T, addr string, args ...string) func() string {
	t.Helper()
	cmd := exec.Command(os.Args[0], append([]string{"registry", "serve", "--addr", addr}, args...)...)
	cmd.Env = append(os.Environ(), "GOCELL_TEST_RUN_MAIN=1")
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	require.NoError(t, cmd.Start())
	stopped := false
	stop := func() string {
		if !stopped {
			stopped = true
			cmd.Process.Signal(syscall.SIGINT)
			cmd.Wait()
		}
		return out.String()
	}
	t.Cleanup(func() { stop() })
	ok := false
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		resp, err := http.Get("http://" + addr + "/v2/")
		if err == nil {
			resp.Body.Close()
			ok = resp.StatusCode == http.StatusOK
			break
		}
	}
	require.True(t, ok, "the registry does not answer on %s: %s", addr, out.String())
	return stop
}

// TestRegistry: a teacher serves the local store; a learner (another
// gocell root) pulls from it by name and gets the same image, by ID; an
// image pushed to it is kept on disk, and served again after a restart.
func TestRegistry(t *testing.T) {
	e := setup(t)
	learner := t.TempDir()
	dir := filepath.Join(t.TempDir(), "registry")
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	asLearner := func(args ...string) []string {
		return append([]string{"--root", learner}, args...)
	}
	// Pulled again, an image prints its full ID.
	res := gocell(t, "pull", e.image)
	require.Equal(t, 0, res.Code, res.Stderr)
	id := strings.TrimSpace(res.Stdout)
	require.Regexp(t, `^sha256:[0-9a-f]{64}$`, id)
	require.Equal(t, 0, gocell(t, "tag", e.image, "class/busybox:1").Code)

	stop := startRegistry(t, addr, "--root", dir)
	// The learner pulls what the teacher's store has, by its path.
	res = gocell(t, asLearner("pull", addr+"/class/busybox:1")...)
	if res.Code != 0 {
		t.Fatalf("pull: %s\nthe registry said: %s", res.Stderr, stop())
	}
	assert.Equal(t, id, strings.TrimSpace(res.Stdout), "the same image: the same config, the same layers")
	assert.Contains(t, res.Stderr, "pulling "+addr+"/class/busybox:1 from registry "+addr)

	// The teacher pushes a new name; a bar per layer, then the digest.
	pushed := addr + "/class/pushed:2"
	require.Equal(t, 0, gocell(t, "tag", e.image, pushed).Code)
	res = gocell(t, "push", pushed)
	require.Equal(t, 0, res.Code, res.Stderr)
	digest := strings.TrimSpace(res.Stdout)
	assert.Regexp(t, `^sha256:[0-9a-f]{64}$`, digest)
	assert.Regexp(t, `layer sha256:[0-9a-f]{12} .*(done|already exists)`, res.Stderr)
	res = gocell(t, "push", pushed)
	require.Equal(t, 0, res.Code, res.Stderr)
	assert.Equal(t, digest+"\n", res.Stdout, "the same image pushes to the same digest")
	assert.Contains(t, res.Stderr, "already exists", "the registry has the layer: it is not sent again")
	// Kept on disk: the manifest, and the blobs it names.
	assert.FileExists(t, filepath.Join(dir, "manifests", "class", "pushed", "@2"))
	blobs, err := filepath.Glob(filepath.Join(dir, "blobs", "sha256", "*"))
	require.NoError(t, err)
	assert.GreaterOrEqual(t, len(blobs), 2, "a layer and a config at least")

	// Restarted, without the local store: what was pushed is still there.
	out := stop()
	assert.Contains(t, out, "serving "+e.image+" as test/busybox:1")
	assert.Contains(t, out, "registry stopped")
	_, err = net.DialTimeout("tcp", addr, time.Second)
	assert.Error(t, err, "nothing listens once it stopped")
	stop = startRegistry(t, addr, "--root", dir, "--no-local")
	res = gocell(t, asLearner("pull", pushed)...)
	require.Equal(t, 0, res.Code, res.Stderr)
	assert.Equal(t, id, strings.TrimSpace(res.Stdout))
	assert.Contains(t, res.Stderr, digest, "by the digest that was pushed")
	res = gocell(t, asLearner("pull", addr+"/class/busybox:1")...)
	assert.Equal(t, 0, res.Code, "kept from the first run too: %s", res.Stderr)
	// The learner's copy runs.
	res = gocell(t, asLearner("run", "--rm", "--network", "none", pushed, "echo", "from the class registry")...)
	assert.Equal(t, 0, res.Code, res.Stderr)
	assert.Equal(t, "from the class registry\n", res.Stdout)

	// Bad input: one line each, nothing half done.
	res = gocell(t, "push", addr+"/class/nosuch:1")
	assert.Equal(t, 125, res.Code)
	assert.Contains(t, res.Stderr, "gocell tag an image with this name first")
	res = gocell(t, "push", "Not A Name")
	assert.NotEqual(t, 0, res.Code)
	assert.Contains(t, res.Stderr, "Not A Name")
	res = gocell(t, "registry", "serve", "--addr", addr, "--root", dir)
	assert.Equal(t, 2, res.Code, "the address is taken: %s", res.Stderr)
	assert.Contains(t, res.Stderr, "address already in use")
	stop()

	// A hostile client cannot lead a name out of the manifests' directory.
	stop = startRegistry(t, addr, "--root", dir, "--no-local")
	for _, path := range []string{"/v2/../../etc/manifests/x", "/v2/a/manifests/..", "/v2/A/manifests/1"} {
		req, err := http.NewRequest(http.MethodPut, "http://"+addr+path, strings.NewReader("{}"))
		require.NoError(t, err)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			assert.NotEqual(t, http.StatusCreated, resp.StatusCode, path)
		}
	}
	stop()
	assert.NoFileExists(t, filepath.Join(dir, "..", "etc"))
}

// TestLogin: against a registry that wants a user name and password,
// a wrong password is refused and nothing is kept; the right one is kept
// as Docker keeps it (config.json, 0600, "auths"), push then works with
// it, and logout forgets it.
func TestLogin(t *testing.T) {
	e := setup(t)
	cfgDir := t.TempDir()
	t.Setenv("DOCKER_CONFIG", cfgDir)
	inner := ggcr.New(ggcr.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if user, pass, ok := r.BasicAuth(); !ok || user != "teacher" || pass != "s3cret" {
			w.Header().Set("WWW-Authenticate", `Basic realm="class"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		inner.ServeHTTP(w, r)
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	file := filepath.Join(cfgDir, "config.json")

	res := gocell(t, "login", "-u", "teacher", "-p", "wrong", host)
	assert.Equal(t, 125, res.Code)
	assert.Contains(t, res.Stderr, "401 Unauthorized: wrong user name or password?")
	assert.NoFileExists(t, file, "nothing kept for a refused login")
	ref := host + "/class/busybox:1"
	require.Equal(t, 0, gocell(t, "tag", e.image, ref).Code)
	res = gocell(t, "push", ref)
	assert.Equal(t, 125, res.Code, "no credentials yet")
	assert.Contains(t, res.Stderr, "401 Unauthorized")

	res = gocell(t, "login", "-u", "teacher", "-p", "s3cret", host)
	require.Equal(t, 0, res.Code, res.Stderr)
	assert.Contains(t, res.Stdout, "Login Succeeded")
	st, err := os.Stat(file)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm())
	var cf struct {
		Auths map[string]struct{ Auth string } `json:"auths"`
	}
	data, err := os.ReadFile(file)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(data, &cf))
	assert.Equal(t, base64.StdEncoding.EncodeToString([]byte("teacher:s3cret")), cf.Auths[host].Auth)
	res = gocell(t, "push", ref)
	assert.Equal(t, 0, res.Code, res.Stderr)

	res = gocell(t, "logout", host)
	require.Equal(t, 0, res.Code, res.Stderr)
	data, err = os.ReadFile(file)
	require.NoError(t, err)
	assert.NotContains(t, string(data), host)
	for _, bad := range [][]string{{"login", "-u", "x", host}, {"login", "-u", "x", "-p", "y", host + "/repo"}, {"logout", host}} {
		res := gocell(t, bad...)
		assert.Equal(t, 2, res.Code, "%v: %s", bad, res.Stderr)
	}
}

// manifestJSON reads manifest.json, the index of a docker save archive.
func manifestJSON(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		require.NoError(t, err, "no manifest.json in %s", path)
		if h.Name == "manifest.json" {
			data, err := io.ReadAll(tr)
			require.NoError(t, err)
			return string(data)
		}
	}
}

// TestSaveLoad: save writes a docker save archive with the name; load in
// another root gets the same image (the same config and layer digests:
// saved again, the archive names the same blobs), and it runs. A failed
// save leaves no file.
func TestSaveLoad(t *testing.T) {
	e := setup(t)
	other := t.TempDir()
	archive := filepath.Join(t.TempDir(), "saved.tar")
	require.Equal(t, 0, gocell(t, "tag", e.image, "class/saved:1").Code)
	res := gocell(t, "save", "-o", archive, "class/saved:1")
	require.Equal(t, 0, res.Code, res.Stderr)
	first := manifestJSON(t, archive)
	assert.Contains(t, first, `"RepoTags":["docker.io/class/saved:1"]`)

	res = gocell(t, "--root", other, "load", "-i", archive)
	require.Equal(t, 0, res.Code, res.Stderr)
	assert.Equal(t, "Loaded image: docker.io/class/saved:1\n", res.Stdout)
	assert.Equal(t, gocell(t, "images", "-q").Stdout[:12], gocell(t, "--root", other, "images", "-q").Stdout[:12],
		"the same image ID")
	again := filepath.Join(t.TempDir(), "again.tar")
	res = gocell(t, "--root", other, "save", "-o", again, "class/saved:1")
	require.Equal(t, 0, res.Code, res.Stderr)
	assert.Equal(t, first, manifestJSON(t, again), "the same config and layers, by digest")
	res = gocell(t, "--root", other, "run", "--rm", "--network", "none", "class/saved:1", "echo", "loaded")
	assert.Equal(t, 0, res.Code, res.Stderr)
	assert.Equal(t, "loaded\n", res.Stdout)

	bad := filepath.Join(t.TempDir(), "bad.tar")
	res = gocell(t, "save", "-o", bad, "nosuch:1")
	assert.Equal(t, 125, res.Code)
	assert.Contains(t, res.Stderr, "save nosuch:1")
	assert.NoFileExists(t, bad)
	entries, _ := os.ReadDir(filepath.Dir(bad))
	assert.Empty(t, entries, "no temporary file left")
	res = gocell(t, "--root", other, "load", "-i", "/etc/hostname")
	assert.NotEqual(t, 0, res.Code)
	assert.Equal(t, 1, strings.Count(res.Stderr, "error:"), res.Stderr)
}

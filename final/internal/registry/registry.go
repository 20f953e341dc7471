// Package registry is gocell's classroom registry: a teacher's laptop
// serves images to the class over the OCI distribution API, without the
// internet. The protocol is go-containerregistry's (pkg/registry), a
// well-kept implementation, with its blobs on disk; that package keeps
// manifests in memory only, so this one keeps a copy of each on disk too,
// and puts them back when it starts: what was served or pushed survives a
// restart.
//
//	ROOT/blobs/sha256/HEX            every blob, by digest
//	ROOT/manifests/REPO/@TARGET      {"mediaType": ..., "manifest": ...}
//
// REPO is a repository name as the distribution spec allows it (lower case
// letters, digits, separators, slashes), and TARGET a tag or a digest: both
// are checked before they become a path, since any client may push.
package registry

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/gocell/gocell/final/internal/persist"
	ggcr "github.com/google/go-containerregistry/pkg/registry"
)

// maxManifest bounds a manifest's size, as the distribution spec lets a
// registry do (4 MiB is what Docker's registry allows): the protocol
// handler reads a manifest whole into memory.
const maxManifest = 4 << 20

// The distribution spec's grammar of repository names and tags
// (distribution-spec, "Pulling manifests"), and sha256 digests.
var (
	repoRE   = regexp.MustCompile(`^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$`)
	tagRE    = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$`)
	digestRE = regexp.MustCompile(`^sha256:[a-f0-9]{64}$`)
)

// Server is the registry: an http.Handler.
type Server struct {
	root  string
	inner http.Handler
	log   *log.Logger
	mu    sync.Mutex // serialises the manifests' files
}

// record is a manifest's file.
type record struct {
	MediaType string `json:"mediaType"`
	Manifest  []byte `json:"manifest"`
}

// New opens (or makes) the registry in root and puts back the manifests
// kept there. Requests are logged to logger (nil: not at all).
func New(root string, logger *log.Logger) (*Server, error) {
	if logger == nil {
		logger = log.New(io.Discard, "", 0)
	}
	for _, d := range []string{"blobs", "manifests"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			return nil, err
		}
	}
	// Putting the kept manifests back goes through the protocol handler,
	// which logs every request: those are not the class's, so the log
	// starts after.
	quiet := &gate{w: logger.Writer()}
	s := &Server{root: root, log: logger, inner: ggcr.New(
		ggcr.Logger(log.New(quiet, logger.Prefix(), logger.Flags())),
		ggcr.WithBlobHandler(ggcr.NewDiskBlobHandler(filepath.Join(root, "blobs"))))}
	if err := s.load(); err != nil {
		return nil, err
	}
	quiet.open.Store(true)
	return s, nil
}

// gate passes writes on once it is open, and drops them before.
type gate struct {
	open atomic.Bool
	w    io.Writer
}

func (g *gate) Write(p []byte) (int, error) {
	if !g.open.Load() {
		return len(p), nil
	}
	return g.w.Write(p)
}

// manifestOf splits /v2/REPO/manifests/TARGET.
func manifestOf(path string) (repo, target string, ok bool) {
	rest, ok := strings.CutPrefix(path, "/v2/")
	if !ok {
		return "", "", false
	}
	i := strings.LastIndex(rest, "/manifests/")
	if i < 0 {
		return "", "", false
	}
	return rest[:i], rest[i+len("/manifests/"):], true
}

// valid says whether repo and target may become a path.
func valid(repo, target string) bool {
	return repoRE.MatchString(repo) && (tagRE.MatchString(target) || digestRE.MatchString(target))
}

// file is where the manifest of repo:target is kept.
func (s *Server) file(repo, target string) string {
	return filepath.Join(s.root, "manifests", filepath.FromSlash(repo), "@"+target)
}

// ServeHTTP serves the protocol, and keeps each manifest pushed (and
// forgets each deleted) once the protocol handler has taken it.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	repo, target, ok := manifestOf(r.URL.Path)
	if !ok || (r.Method != http.MethodPut && r.Method != http.MethodDelete) {
		s.inner.ServeHTTP(w, r)
		return
	}
	if !valid(repo, target) {
		s.log.Printf("%s %s 400 NAME_INVALID", r.Method, r.URL)
		writeError(w, http.StatusBadRequest, "NAME_INVALID", "invalid repository name or tag")
		return
	}
	var body []byte
	if r.Method == http.MethodPut {
		var err error
		body, err = io.ReadAll(http.MaxBytesReader(w, r.Body, maxManifest))
		if err != nil {
			writeError(w, http.StatusRequestEntityTooLarge, "SIZE_INVALID", "manifest too large")
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rec := httptest.NewRecorder()
	s.inner.ServeHTTP(rec, r)
	var err error
	switch {
	case r.Method == http.MethodPut && rec.Code == http.StatusCreated:
		err = s.keep(repo, target, record{MediaType: r.Header.Get("Content-Type"), Manifest: body})
	case r.Method == http.MethodDelete && rec.Code == http.StatusAccepted:
		err = os.Remove(s.file(repo, target))
		if errors.Is(err, fs.ErrNotExist) {
			err = nil
		}
	}
	if err != nil {
		// The client must not believe it is kept when it is not.
		s.log.Printf("keeping %s:%s: %v", repo, target, err)
		writeError(w, http.StatusInternalServerError, "UNKNOWN", "could not keep the manifest")
		return
	}
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	w.Write(rec.Body.Bytes())
}

// keep writes a manifest's file, atomically and durably.
func (s *Server) keep(repo, target string, rec record) error {
	data, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	path := s.file(repo, target)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return persist.WriteFile(path, data, 0o644, true)
}

// load puts the kept manifests back, by digest first, so that an index
// finds the manifests it lists (the protocol handler checks), then by tag.
func (s *Server) load() error {
	type kept struct{ repo, target, path string }
	var all []kept
	dir := filepath.Join(s.root, "manifests")
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasPrefix(d.Name(), "@") {
			return err
		}
		rel, _ := filepath.Rel(dir, filepath.Dir(path))
		all = append(all, kept{filepath.ToSlash(rel), d.Name()[1:], path})
		return nil
	})
	if err != nil {
		return err
	}
	rank := func(k kept) int {
		if digestRE.MatchString(k.target) {
			return 0
		}
		return 1
	}
	sort.SliceStable(all, func(i, j int) bool { return rank(all[i]) < rank(all[j]) })
	for pass := 0; pass < 2; pass++ { // an index after the manifests it lists
		var again []kept
		for _, k := range all {
			data, err := os.ReadFile(k.path)
			if err != nil {
				return err
			}
			var rec record
			if err := json.Unmarshal(data, &rec); err != nil || !valid(k.repo, k.target) {
				return fmt.Errorf("registry: %s: not a kept manifest", k.path)
			}
			req := httptest.NewRequest(http.MethodPut, "/v2/"+k.repo+"/manifests/"+k.target,
				bytes.NewReader(rec.Manifest))
			req.Header.Set("Content-Type", rec.MediaType)
			w := httptest.NewRecorder()
			s.inner.ServeHTTP(w, req)
			if w.Code != http.StatusCreated {
				again = append(again, k)
			}
		}
		if all = again; len(all) == 0 {
			return nil
		}
	}
	return fmt.Errorf("registry: %d kept manifests cannot be put back, such as %s:%s",
		len(all), all[0].repo, all[0].target)
}

// writeError answers with the distribution spec's error body.
func writeError(w http.ResponseWriter, status int, code, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"errors": []map[string]string{{"code": code, "message": message}}})
}

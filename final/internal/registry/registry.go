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
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"log"
	"net"
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

// maxUpload bounds one request's upload: the protocol handler holds
// uploads in memory until they are whole.
const maxUpload = 2 << 30

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

	// AllowPush lets any client push and delete; without it, only
	// clients on this machine (loopback) may, and the class may only
	// pull. The protocol has no accounts here: this is the lock.
	AllowPush bool
}

// manifestTypes are the media types a manifest may be pushed as.
var manifestTypes = map[string]bool{
	"application/vnd.oci.image.manifest.v1+json":                true,
	"application/vnd.oci.image.index.v1+json":                   true,
	"application/vnd.docker.distribution.manifest.v2+json":      true,
	"application/vnd.docker.distribution.manifest.list.v2+json": true,
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
	// What uploads that failed or were cut off left: the blob handler
	// writes upload-* files, and renames only whole, checked ones.
	stale, _ := filepath.Glob(filepath.Join(root, "blobs", "upload-*"))
	for _, f := range stale {
		os.Remove(f)
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

// manifestOf splits /v2/REPO/manifests/TARGET, by the rule the
// protocol handler routes by: "manifests" the next to last element.
func manifestOf(path string) (repo, target string, ok bool) {
	elems := strings.Split(path, "/")
	if len(elems) < 5 || elems[len(elems)-2] != "manifests" {
		return "", "", false
	}
	return strings.Join(elems[2:len(elems)-2], "/"), elems[len(elems)-1], true
}

// fromHere says whether a request comes from this machine: over
// loopback, or to one of its addresses from that same address (the
// teacher pushing to 10.0.2.15:5000 from 10.0.2.15).
func fromHere(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	ip := net.ParseIP(host)
	if err != nil || ip == nil {
		return false
	}
	if ip.IsLoopback() {
		return true
	}
	local, ok := r.Context().Value(http.LocalAddrContextKey).(*net.TCPAddr)
	return ok && local.IP.Equal(ip)
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
	// The protocol handler routes by the end of the path alone: what is
	// not under /v2/ is no part of the registry.
	if r.URL.Path != "/v2" && !strings.HasPrefix(r.URL.Path, "/v2/") {
		writeError(w, http.StatusNotFound, "NOT_FOUND", "not a registry path")
		return
	}
	write := r.Method != http.MethodGet && r.Method != http.MethodHead
	if write && !s.AllowPush && !fromHere(r) {
		s.log.Printf("%s %s from %s 403 DENIED", r.Method, r.URL, r.RemoteAddr)
		writeError(w, http.StatusForbidden, "DENIED", "pushing is for this machine only (gocell registry serve --allow-push)")
		return
	}
	if r.Method == http.MethodDelete && strings.Contains(r.URL.Path, "/blobs/") {
		// A blob may be in any repository's image: deleting one
		// through any name would break them all.
		writeError(w, http.StatusMethodNotAllowed, "UNSUPPORTED", "blobs are not deleted")
		return
	}
	repo, target, ok := manifestOf(r.URL.Path)
	if !ok || (r.Method != http.MethodPut && r.Method != http.MethodDelete) {
		if write {
			r.Body = http.MaxBytesReader(w, r.Body, maxUpload)
		}
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
		if !manifestTypes[r.Header.Get("Content-Type")] {
			writeError(w, http.StatusBadRequest, "MANIFEST_INVALID", "not a manifest's media type")
			return
		}
		if digestRE.MatchString(target) {
			sum := sha256.Sum256(body)
			if "sha256:"+hex.EncodeToString(sum[:]) != target {
				writeError(w, http.StatusBadRequest, "DIGEST_INVALID", "the manifest does not have that digest")
				return
			}
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
	// An index goes in after the manifests it lists: pass after pass,
	// while each puts some back. What cannot go back (an index whose
	// manifest was deleted, a broken file) is left out, and said: one
	// client's mistake must not keep the registry from starting.
	for {
		var again []kept
		for _, k := range all {
			data, err := os.ReadFile(k.path)
			var rec record
			if err == nil {
				err = json.Unmarshal(data, &rec)
			}
			if err != nil || !valid(k.repo, k.target) {
				s.log.Printf("left out %s: not a kept manifest", k.path)
				continue
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
		if len(again) == 0 {
			return nil
		}
		if len(again) == len(all) {
			for _, k := range again {
				s.log.Printf("left out %s:%s: it lists manifests the registry does not have", k.repo, k.target)
			}
			return nil
		}
		all = again
	}
}

// writeError answers with the distribution spec's error body.
func writeError(w http.ResponseWriter, status int, code, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"errors": []map[string]string{{"code": code, "message": message}}})
}

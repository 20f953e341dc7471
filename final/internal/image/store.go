package image

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/gocell/gocell/final/internal/persist"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"
)

// Store is an image store rooted at one directory; see the package doc for
// its layout. A Store is safe for concurrent use, also by several processes
// sharing the root: changes are serialised with flock(2).
type Store struct {
	root string
	// Limits bound each layer that is unpacked (pull, import, commit).
	Limits Limits
	// hub, when set, is the host that stands in for Docker Hub. Only
	// tests set it, to exercise mirror fallback without the internet.
	hub string
}

// Lock files (see the package doc).
const (
	// layersLock is held shared by everything that adds layers and the
	// images using them (Pull, Import, Commit), and exclusively by Remove,
	// which deletes layers no image uses. So a layer just unpacked cannot
	// be collected before its image is recorded.
	layersLock = "image.lock"
	// refsLock guards repositories.json and images/.
	refsLock = "refs.lock"
)

// Open opens the store at root, creating its directories if needed.
func Open(root string) (*Store, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("open image store %s: %w", root, err)
	}
	s := &Store{root: abs, Limits: DefaultLimits}
	// 0700, the root included: a layer may hold set-user-ID files, and
	// a host user who could reach one here would run it as its owner,
	// root (CVE-2021-41091). Nobody but root needs to come in: a
	// container sees its layers through the overlay mounted on them, and
	// a --userns container through idmapped mounts that root made.
	for _, d := range []string{abs, s.path("images"), s.path("layers"), s.path("tmp")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("open image store: %w", err)
		}
	}
	// A root made by an older gocell (0711) is closed too.
	if err := os.Chmod(abs, 0o700); err != nil {
		return nil, fmt.Errorf("open image store: %w", err)
	}
	return s, nil
}

// Root is the directory the store lives in.
func (s *Store) Root() string {
	return s.root
}

// path joins names below the root.
func (s *Store) path(elem ...string) string {
	return filepath.Join(append([]string{s.root}, elem...)...)
}

// lock takes a flock(2) on root/file: unix.LOCK_SH or unix.LOCK_EX. Each
// call opens the file anew, so goroutines of one process exclude each
// other as separate processes do.
func (s *Store) lock(file string, how int) (unlock func(), err error) {
	unlock, err = persist.Lock(s.path(file), how)
	if err != nil {
		return nil, fmt.Errorf("image store: %w", err)
	}
	return unlock, nil
}

// hexOf checks that d is "sha256:<64 lower-case hex>" and returns the hex.
// Digests come from configs and manifests written by strangers and become
// file names, so this check is what keeps "sha256:../../x" out of paths.
func hexOf(d string) (string, error) {
	h, ok := strings.CutPrefix(d, "sha256:")
	if !ok || len(h) != sha256.Size*2 || !isHex(h) {
		return "", fmt.Errorf("%q is not a sha256 digest", d)
	}
	return h, nil
}

// isHex reports whether s is non-empty lower-case hexadecimal.
func isHex(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// digestOf is the "sha256:<hex>" digest of b.
func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// writeFileAtomic replaces path with data: written to a temporary file,
// flushed, then renamed over path, so readers see the old file or the new
// one, never half of either.
func (s *Store) writeFileAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(s.path("tmp"), "file-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) // no-op once renamed
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Chmod(f.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// refs is the content of repositories.json: normalized reference → ID.
type refs map[string]string

// readRefs loads repositories.json; a missing file is an empty store.
func (s *Store) readRefs() (refs, error) {
	var f struct {
		Refs refs `json:"refs"`
	}
	b, err := os.ReadFile(s.path("repositories.json"))
	if errors.Is(err, os.ErrNotExist) {
		return refs{}, nil
	}
	if err == nil {
		err = json.Unmarshal(b, &f)
	}
	if err != nil {
		return nil, fmt.Errorf("read image names: %w", err)
	}
	if f.Refs == nil {
		f.Refs = refs{}
	}
	return f.Refs, nil
}

// writeRefs saves repositories.json. Callers hold refsLock exclusively.
func (s *Store) writeRefs(r refs) error {
	b, err := json.MarshalIndent(struct {
		Refs refs `json:"refs"`
	}{r}, "", "  ")
	if err == nil {
		err = s.writeFileAtomic(s.path("repositories.json"), b)
	}
	if err != nil {
		return fmt.Errorf("save image names: %w", err)
	}
	return nil
}

// imageRecord is images/<hex>/image.json: what the config does not say.
type imageRecord struct {
	Digest string `json:"digest,omitempty"`
	Size   int64  `json:"size"`
}

// imageIDs lists the IDs of all stored images.
func (s *Store) imageIDs() ([]string, error) {
	entries, err := os.ReadDir(s.path("images"))
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	var ids []string
	for _, e := range entries {
		if _, err := hexOf("sha256:" + e.Name()); err == nil && e.IsDir() {
			ids = append(ids, "sha256:"+e.Name())
		}
	}
	return ids, nil
}

// loadImage reads image id and attaches the names in r that point at it.
func (s *Store) loadImage(id string, r refs) (*Image, error) {
	h, err := hexOf(id)
	if err != nil {
		return nil, err
	}
	raw, err := os.ReadFile(s.path("images", h, "config.json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("image %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", id, err)
	}
	cf, err := v1.ParseConfigFile(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("image %s: config: %w", id, err)
	}
	var rec imageRecord
	b, err := os.ReadFile(s.path("images", h, "image.json"))
	if err == nil {
		err = json.Unmarshal(b, &rec)
	}
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", id, err)
	}
	img := &Image{
		ID:           id,
		Digest:       rec.Digest,
		Config:       configOf(cf),
		Created:      cf.Created.Time,
		Size:         rec.Size,
		OS:           cf.OS,
		Architecture: cf.Architecture,
	}
	for _, d := range cf.RootFS.DiffIDs {
		img.Layers = append(img.Layers, d.String())
	}
	for name, target := range r {
		switch {
		case target != id:
		case strings.Contains(name, "@"):
			img.RepoDigests = append(img.RepoDigests, name)
		default:
			img.RepoTags = append(img.RepoTags, name)
		}
	}
	sort.Strings(img.RepoTags)
	sort.Strings(img.RepoDigests)
	return img, nil
}

// resolve finds the ID that ref means, in Docker's order: a full ID, a
// name, then a unique ID prefix of at least 4 hex digits.
func (s *Store) resolve(ref string, r refs) (string, error) {
	if h, ok := strings.CutPrefix(ref, "sha256:"); ok {
		if !isHex(h) {
			return "", fmt.Errorf("%q: %w", ref, ErrInvalidReference)
		}
		return s.resolvePrefix(ref, h)
	}
	parsed, perr := ParseReference(ref)
	if perr == nil {
		if id, ok := r[parsed.String()]; ok {
			return id, nil
		}
	}
	if isHex(ref) && len(ref) <= sha256.Size*2 {
		return s.resolvePrefix(ref, ref)
	}
	if perr != nil {
		return "", perr
	}
	return "", fmt.Errorf("image %q: %w", ref, ErrNotFound)
}

// resolvePrefix finds the one image whose ID starts with prefix.
func (s *Store) resolvePrefix(ref, prefix string) (string, error) {
	if len(prefix) < 4 {
		return "", fmt.Errorf("image %q: an ID prefix needs at least 4 "+
			"hex digits: %w", ref, ErrNotFound)
	}
	ids, err := s.imageIDs()
	if err != nil {
		return "", err
	}
	var found []string
	for _, id := range ids {
		if strings.HasPrefix(id, "sha256:"+prefix) {
			found = append(found, id)
		}
	}
	switch len(found) {
	case 0:
		return "", fmt.Errorf("image %q: %w", ref, ErrNotFound)
	case 1:
		return found[0], nil
	default:
		return "", fmt.Errorf("image %q matches %d images: %w",
			ref, len(found), ErrAmbiguous)
	}
}

// Get finds an image by name[:tag], name@digest, full ID ("sha256:…" or
// 64 hex digits) or unique ID prefix of at least 4 hex digits.
func (s *Store) Get(ref string) (*Image, error) {
	unlock, err := s.lock(refsLock, unix.LOCK_SH)
	if err != nil {
		return nil, err
	}
	defer unlock()
	r, err := s.readRefs()
	if err != nil {
		return nil, err
	}
	id, err := s.resolve(ref, r)
	if err != nil {
		return nil, err
	}
	return s.loadImage(id, r)
}

// List returns all images, newest first.
func (s *Store) List() ([]*Image, error) {
	unlock, err := s.lock(refsLock, unix.LOCK_SH)
	if err != nil {
		return nil, err
	}
	defer unlock()
	r, err := s.readRefs()
	if err != nil {
		return nil, err
	}
	ids, err := s.imageIDs()
	if err != nil {
		return nil, err
	}
	var imgs []*Image
	for _, id := range ids {
		img, err := s.loadImage(id, r)
		if err != nil {
			return nil, err
		}
		imgs = append(imgs, img)
	}
	sort.SliceStable(imgs, func(i, j int) bool {
		return imgs[i].Created.After(imgs[j].Created)
	})
	return imgs, nil
}

// Tag gives the image src (any form Get accepts) the name dst. As with
// `docker tag`, a name that pointed at another image moves to this one.
func (s *Store) Tag(src, dst string) error {
	d, err := ParseReference(dst)
	if err != nil {
		return fmt.Errorf("tag %s: %w", dst, err)
	}
	if d.Digest != "" {
		return fmt.Errorf("tag %s: a tag cannot be a digest: %w",
			dst, ErrInvalidReference)
	}
	unlock, err := s.lock(refsLock, unix.LOCK_EX)
	if err != nil {
		return err
	}
	defer unlock()
	r, err := s.readRefs()
	if err != nil {
		return err
	}
	id, err := s.resolve(src, r)
	if err != nil {
		return fmt.Errorf("tag %s: %w", src, err)
	}
	r[d.String()] = id
	return s.writeRefs(r)
}

// Untag removes the name ref (name:tag or name@digest). The image stays,
// even without names (Docker's "<none>"); use Remove to delete it.
func (s *Store) Untag(ref string) error {
	unlock, err := s.lock(refsLock, unix.LOCK_EX)
	if err != nil {
		return err
	}
	defer unlock()
	_, err = s.untag(ref)
	return err
}

// untag removes one name and returns the ID it pointed at. Callers hold
// refsLock exclusively.
func (s *Store) untag(ref string) (string, error) {
	p, err := ParseReference(ref)
	if err != nil {
		return "", fmt.Errorf("untag %s: %w", ref, err)
	}
	r, err := s.readRefs()
	if err != nil {
		return "", err
	}
	id, ok := r[p.String()]
	if !ok {
		return "", fmt.Errorf("untag %s: no such name: %w", ref, ErrNotFound)
	}
	delete(r, p.String())
	return id, s.writeRefs(r)
}

// Remove works like `docker rmi`. Given a name, it removes that name, and
// the image too once no name points at it. Given an ID (or prefix), it
// removes the image and all its names. Layers no remaining image uses are
// deleted. Whether a container still uses the image is the caller's
// question: compare with Image.ID before calling. Remove waits for pulls,
// imports and commits in progress, since it may delete layers.
func (s *Store) Remove(ref string) error {
	unlockLayers, err := s.lock(layersLock, unix.LOCK_EX)
	if err != nil {
		return err
	}
	defer unlockLayers()
	unlock, err := s.lock(refsLock, unix.LOCK_EX)
	if err != nil {
		return err
	}
	defer unlock()
	if err := s.remove(ref); err != nil {
		return fmt.Errorf("remove %s: %w", ref, err)
	}
	return s.collect()
}

// remove deletes names and the image as Remove describes; callers hold
// both locks exclusively.
func (s *Store) remove(ref string) error {
	r, err := s.readRefs()
	if err != nil {
		return err
	}
	id := ""
	if p, err := ParseReference(ref); err == nil {
		if target, ok := r[p.String()]; ok {
			// By name: drop the name; keep the image if others remain.
			delete(r, p.String())
			id = target
			// Digest names do not keep an image, as in Docker.
			for name, other := range r {
				if other == id && !strings.Contains(name, "@") {
					return s.writeRefs(r)
				}
			}
		}
	}
	if id == "" {
		if id, err = s.resolve(ref, r); err != nil {
			return err
		}
	}
	for name, target := range r {
		if target == id {
			delete(r, name)
		}
	}
	// Names first: a crash in between leaves an unnamed image, which
	// List still shows and Remove can delete, never a dangling name.
	if err := s.writeRefs(r); err != nil {
		return err
	}
	h, err := hexOf(id)
	if err != nil {
		return err
	}
	return s.discard(s.path("images", h))
}

// discard deletes a directory of the store: renamed into tmp/ first so it
// vanishes at once, then removed at leisure.
func (s *Store) discard(dir string) error {
	trash, err := os.MkdirTemp(s.path("tmp"), "trash-*")
	if err != nil {
		return err
	}
	if err := os.Rename(dir, filepath.Join(trash, "x")); err != nil {
		os.Remove(trash)
		return err
	}
	return removeAll(trash)
}

// removeAll is os.RemoveAll for unpacked layers. Root may delete anything;
// anyone else is stopped by a layer's read-only directories (0555 is
// common), so on a permission error it makes the directories writable and
// tries again.
func removeAll(path string) error {
	err := os.RemoveAll(path)
	if err == nil || !errors.Is(err, fs.ErrPermission) {
		return err
	}
	_ = filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			_ = os.Chmod(p, 0o700) // before WalkDir reads it
		}
		return nil
	})
	return os.RemoveAll(path)
}

// collect deletes the layers no image uses, and anything left in tmp/ by
// an operation that crashed. Callers hold both locks exclusively, so no
// other Pull, Import or Commit is using tmp/ or a fresh layer.
func (s *Store) collect() error {
	used := map[string]bool{}
	ids, err := s.imageIDs()
	if err != nil {
		return err
	}
	for _, id := range ids {
		img, err := s.loadImage(id, nil)
		if err != nil {
			return err
		}
		for _, l := range img.Layers {
			used[l] = true
		}
	}
	entries, err := os.ReadDir(s.path("layers"))
	if err != nil {
		return fmt.Errorf("list layers: %w", err)
	}
	for _, e := range entries {
		if used["sha256:"+e.Name()] {
			continue
		}
		if err := s.discard(s.path("layers", e.Name())); err != nil {
			return fmt.Errorf("delete layer sha256:%s: %w", e.Name(), err)
		}
	}
	tmp, err := os.ReadDir(s.path("tmp"))
	if err != nil {
		return err
	}
	for _, e := range tmp {
		if err := removeAll(s.path("tmp", e.Name())); err != nil {
			return err
		}
	}
	return nil
}

// LayerDirs returns the unpacked directories of img's layers, top layer
// first: the order of overlayfs's lowerdir=top:…:bottom option.
func (s *Store) LayerDirs(img *Image) ([]string, error) {
	dirs := make([]string, 0, len(img.Layers))
	for i := len(img.Layers) - 1; i >= 0; i-- {
		dir, err := s.layerDir(img.Layers[i])
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", img.ShortID(), err)
		}
		if _, err := os.Stat(dir); err != nil {
			return nil, fmt.Errorf("image %s: layer %s: %w",
				img.ShortID(), img.Layers[i], ErrNotFound)
		}
		dirs = append(dirs, dir)
	}
	return dirs, nil
}

// addImage records an image whose layers are all stored: its config blob,
// the manifest digest it came by (if any), and names (normalized
// references) that should point at it. Callers hold layersLock shared, so
// the layers cannot be collected before the image that uses them exists.
func (s *Store) addImage(raw []byte, digest string, names []string) (*Image, error) {
	cf, err := v1.ParseConfigFile(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("image config: %w", err)
	}
	id := digestOf(raw)
	h, _ := hexOf(id) // digestOf makes well-formed digests
	rec := imageRecord{Digest: digest}
	seen := map[string]bool{}
	for _, d := range cf.RootFS.DiffIDs {
		if seen[d.String()] {
			continue
		}
		seen[d.String()] = true
		l, err := s.layerInfo(d.String())
		if err != nil {
			return nil, err
		}
		rec.Size += l.Size
	}

	unlock, err := s.lock(refsLock, unix.LOCK_EX)
	if err != nil {
		return nil, err
	}
	defer unlock()
	dir := s.path("images", h)
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		if err := s.newImageDir(dir, raw, rec); err != nil {
			return nil, fmt.Errorf("store image %s: %w", id, err)
		}
	} else if digest != "" {
		// Known image, new way to reach it: remember the latest digest.
		b, err := json.Marshal(rec)
		if err == nil {
			err = s.writeFileAtomic(filepath.Join(dir, "image.json"), b)
		}
		if err != nil {
			return nil, fmt.Errorf("store image %s: %w", id, err)
		}
	}
	r, err := s.readRefs()
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		r[n] = id
	}
	if err := s.writeRefs(r); err != nil {
		return nil, err
	}
	return s.loadImage(id, r)
}

// newImageDir writes images/<hex>/ in tmp/ and renames it into place.
func (s *Store) newImageDir(dir string, raw []byte, rec imageRecord) error {
	tmp, err := os.MkdirTemp(s.path("tmp"), "image-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(tmp, "config.json"), raw, 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(tmp, "image.json"), b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, dir)
}

// Names lists the tags of the store at root, without making or changing
// anything there (a missing store has none): shell completion reads it
// at each Tab.
func Names(root string) ([]string, error) {
	r, err := (&Store{root: root}).readRefs()
	if err != nil {
		return nil, err
	}
	var out []string
	for name := range r {
		if !strings.Contains(name, "@") {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out, nil
}

package volume

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"time"

	"golang.org/x/sys/unix"
)

// Volume is a named volume.
type Volume struct {
	// Name is the volume's name, see ValidateName.
	Name string `json:"name"`
	// Dir is where its data lives: <root>/volumes/NAME/_data. This is
	// what gets bind-mounted into containers.
	Dir string `json:"-"`
	// Created is when the volume was made.
	Created time.Time `json:"created"`
}

// Store keeps named volumes under <root>/volumes:
//
//	volumes/NAME/volume.json   the Volume (name, creation time)
//	volumes/NAME/_data         the data, mounted into containers
//
// The data sits one level below the volume's directory, as in Docker, so
// the metadata is never visible inside a container.
//
// Every change is a single rename(2), so concurrent gocell processes
// never see half a volume: Create builds the volume under a temporary
// name and renames it into place; Remove renames it away before deleting.
// The store does not know which containers use a volume; callers do, and
// pass that in to Remove and Prune (holding whatever lock keeps that
// answer true until the call returns).
type Store struct {
	dir string
}

// The store's file names.
const (
	volumesDir = "volumes"
	dataDir    = "_data"
	metaFile   = "volume.json"
)

// Open opens the store under root, making <root>/volumes if need be. It
// is readable by root only: volumes hold containers' data.
func Open(root string) (*Store, error) {
	dir := filepath.Join(root, volumesDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("open volume store: %w", err)
	}
	return &Store{dir: dir}, nil
}

// Create makes the volume name unless it exists. It reports whether it
// was made now, so the caller knows to seed it (see Seed). Two processes
// creating the same name at once both succeed, and exactly one of them
// is told it created it.
func (s *Store) Create(name string) (*Volume, bool, error) {
	if err := ValidateName(name); err != nil {
		return nil, false, err
	}
	if v, err := s.Get(name); err == nil {
		return v, false, nil
	} else if !errors.Is(err, ErrNotFound) {
		return nil, false, err
	}

	// Build it under a name no volume can have (names never start with
	// "."), then publish it with one rename(2).
	tmp, err := os.MkdirTemp(s.dir, ".new-")
	if err != nil {
		return nil, false, fmt.Errorf("create volume %s: %w", name, err)
	}
	defer os.RemoveAll(tmp) // a no-op once renamed
	v := &Volume{Name: name, Created: time.Now().UTC()}
	if err := os.Mkdir(filepath.Join(tmp, dataDir), 0o755); err != nil {
		return nil, false, fmt.Errorf("create volume %s: %w", name, err)
	}
	if err := writeMeta(filepath.Join(tmp, metaFile), v); err != nil {
		return nil, false, fmt.Errorf("create volume %s: %w", name, err)
	}
	// MkdirTemp made it 0700; a volume's directory is as open as Docker's.
	if err := os.Chmod(tmp, 0o755); err != nil {
		return nil, false, fmt.Errorf("create volume %s: %w", name, err)
	}
	// rename(2) onto an existing, non-empty directory fails with
	// ENOTEMPTY (or EEXIST): then someone else created it first.
	err = os.Rename(tmp, filepath.Join(s.dir, name))
	if errors.Is(err, unix.ENOTEMPTY) || errors.Is(err, unix.EEXIST) {
		v, err := s.Get(name)
		return v, false, err
	}
	if err != nil {
		return nil, false, fmt.Errorf("create volume %s: %w", name, err)
	}
	syncDir(s.dir)
	v.Dir = filepath.Join(s.dir, name, dataDir)
	return v, true, nil
}

// Get returns the volume name, or an error wrapping ErrNotFound.
func (s *Store) Get(name string) (*Volume, error) {
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(filepath.Join(s.dir, name, metaFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, name)
	}
	if err != nil {
		return nil, fmt.Errorf("volume %s: %w", name, err)
	}
	var v Volume
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("volume %s: %s: %w", name, metaFile, err)
	}
	if v.Name != name {
		return nil, fmt.Errorf("volume %s: %s names %q", name, metaFile,
			v.Name)
	}
	v.Dir = filepath.Join(s.dir, name, dataDir)
	return &v, nil
}

// List returns every volume, sorted by name. Entries that are not
// volumes (the store's temporary directories) are skipped.
func (s *Store) List() ([]*Volume, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("list volumes: %w", err)
	}
	var vols []*Volume
	for _, e := range entries {
		if !e.IsDir() || ValidateName(e.Name()) != nil {
			continue
		}
		v, err := s.Get(e.Name())
		if errors.Is(err, ErrNotFound) {
			continue // removed while we listed
		}
		if err != nil {
			return nil, fmt.Errorf("list volumes: %w", err)
		}
		vols = append(vols, v)
	}
	sort.Slice(vols, func(i, j int) bool { return vols[i].Name < vols[j].Name })
	return vols, nil
}

// Remove deletes the volume name and its data. It refuses with ErrInUse
// when inUse is set: the caller knows which containers use the volume.
func (s *Store) Remove(name string, inUse bool) error {
	if _, err := s.Get(name); err != nil {
		return fmt.Errorf("remove volume: %w", err)
	}
	if inUse {
		return fmt.Errorf("remove volume %s: %w", name, ErrInUse)
	}
	// Take it out of sight with one rename(2) first, so that a crash or
	// an error half-way through deletes never leave a volume that looks
	// whole but has lost part of its data.
	gone, err := os.MkdirTemp(s.dir, ".rm-")
	if err != nil {
		return fmt.Errorf("remove volume %s: %w", name, err)
	}
	trash := filepath.Join(gone, name)
	if err := os.Rename(filepath.Join(s.dir, name), trash); err != nil {
		os.Remove(gone)
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove volume: %w: %s", ErrNotFound, name)
		}
		return fmt.Errorf("remove volume %s: %w", name, err)
	}
	syncDir(s.dir)
	// RemoveAll never follows symlinks, whatever a container left in
	// the volume.
	if err := os.RemoveAll(gone); err != nil {
		return fmt.Errorf("remove volume %s: %w", name, err)
	}
	return nil
}

// Prune removes every volume not in inUse and returns the names removed,
// sorted. It goes on past a volume it cannot remove and returns all the
// errors together.
func (s *Store) Prune(inUse map[string]bool) ([]string, error) {
	vols, err := s.List()
	if err != nil {
		return nil, fmt.Errorf("prune volumes: %w", err)
	}
	var removed []string
	var errs []error
	for _, v := range vols {
		if inUse[v.Name] {
			continue
		}
		err := s.Remove(v.Name, false)
		switch {
		case err == nil:
			removed = append(removed, v.Name)
		case !errors.Is(err, ErrNotFound): // gone already: fine
			errs = append(errs, err)
		}
	}
	return removed, errors.Join(errs...)
}

// Resolve maps a mount to its host source: a named volume's data directory (the volume must
// exist: create it first), or a bind mount's host path, which must exist
// (Docker would create it; a typo would then quietly mount an empty
// directory).
func (s *Store) Resolve(m Mount) (string, error) {
	if m.Named {
		v, err := s.Get(m.Source)
		if err != nil {
			return "", err
		}
		return v.Dir, nil
	}
	if !filepath.IsAbs(m.Source) {
		return "", fmt.Errorf("%w: bind source %q is not an absolute path",
			ErrInvalid, m.Source)
	}
	if _, err := os.Stat(m.Source); err != nil {
		return "", fmt.Errorf("bind source: %w", err)
	}
	return m.Source, nil
}

// writeMeta writes v to path durably: data, then fsync, then close.
func writeMeta(path string, v *Volume) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// syncDir makes a rename in dir durable. It is best effort: the rename
// has happened either way, and only a power cut could undo it.
func syncDir(dir string) {
	if f, err := os.Open(dir); err == nil {
		f.Sync()
		f.Close()
	}
}

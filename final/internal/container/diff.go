package container

import (
	"errors"
	"fmt"
	"io/fs"

	"path/filepath"
	"sort"

	"github.com/gocell/gocell/final/internal/inroot"
	"golang.org/x/sys/unix"
)

// Change is one path the container changed in its file system, as
// docker diff shows it: A added, C changed, D deleted.
type Change struct {
	Kind byte
	Path string
}

// Diff lists what the container changed, from its writable layer (the
// overlay's upper directory, see lessons/08-overlay.md): a whiteout, a
// character device 0/0, is a deletion; anything else is a change if a
// layer of the image has the path, an addition if none has. The image's
// layers are looked into without following any symlink: they are the
// image's, and the container's paths name them.
func (s *Store) Diff(ref string) ([]Change, error) {
	st, err := s.Get(ref)
	if err != nil {
		return nil, err
	}
	var layers []int
	defer func() {
		for _, fd := range layers {
			unix.Close(fd)
		}
	}()
	for _, dir := range st.Spec.Layers { // top first, as lowerdir
		fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, fmt.Errorf("diff %s: image layer: %w", st.Name, err)
		}
		layers = append(layers, fd)
	}
	inImage := func(rel string) bool {
		for _, fd := range layers {
			f, err := inroot.Open(fd, rel, unix.O_PATH|unix.O_NOFOLLOW, inroot.Beneath)
			if err != nil {
				continue // not in this layer, or behind a symlink
			}
			var st unix.Stat_t
			err = unix.Fstat(f, &st)
			unix.Close(f)
			if err != nil {
				continue
			}
			// A whiteout in a higher layer hides the lower ones.
			return !isWhiteout(&st)
		}
		return false
	}
	upper := filepath.Join(s.Dir(st.ID), "upper")
	var out []Change
	err = filepath.WalkDir(upper, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // removed while we walked
			}
			return err
		}
		if path == upper {
			return nil
		}
		rel, _ := filepath.Rel(upper, path)
		var st unix.Stat_t
		if err := unix.Lstat(path, &st); err != nil {
			return nil
		}
		switch {
		case isWhiteout(&st):
			out = append(out, Change{'D', "/" + rel})
		case inImage(rel):
			out = append(out, Change{'C', "/" + rel})
		default:
			out = append(out, Change{'A', "/" + rel})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("diff %s: %w", st.Name, err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

// isWhiteout tells an overlayfs whiteout: a character device 0/0.
func isWhiteout(st *unix.Stat_t) bool {
	return st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == 0
}

package container

import (
	"fmt"
	"os"

	"path/filepath"
	"sort"
	"strings"

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
	// The upper directory is the container's to change while we read
	// it: walked by descriptors, each directory opened relative to its
	// parent with O_NOFOLLOW, a directory swapped for a symlink is not
	// followed, and no path grows past PATH_MAX.
	upper, err := unix.Open(filepath.Join(s.Dir(st.ID), "upper"),
		unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("diff %s: %w", st.Name, err)
	}
	var out []Change
	var walk func(dir int, rel string) error
	walk = func(dir int, rel string) error {
		f := os.NewFile(uintptr(dir), rel)
		defer f.Close()
		names, err := f.Readdirnames(-1)
		if err != nil {
			return err
		}
		for _, name := range names {
			path := rel + "/" + name
			var st unix.Stat_t
			if unix.Fstatat(dir, name, &st, unix.AT_SYMLINK_NOFOLLOW) != nil {
				continue // removed while we read
			}
			switch {
			case runtimeMade[path] && (st.Mode&unix.S_IFMT == unix.S_IFREG && st.Size == 0 ||
				st.Mode&unix.S_IFMT == unix.S_IFDIR):
				continue // a mount point the runtime made, not the container's change
			case isWhiteout(&st):
				out = append(out, Change{'D', path})
				continue
			case inImage(strings.TrimPrefix(path, "/")):
				out = append(out, Change{'C', path})
			default:
				out = append(out, Change{'A', path})
			}
			if st.Mode&unix.S_IFMT != unix.S_IFDIR {
				continue
			}
			sub, err := unix.Openat(dir, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			if err != nil {
				continue // no longer a directory
			}
			if err := walk(sub, path); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(upper, ""); err != nil {
		return nil, fmt.Errorf("diff %s: %w", st.Name, err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

// runtimeMade are the mount points a start makes in the writable layer
// when the image lacks them, as Docker's diff leaves them out too.
var runtimeMade = map[string]bool{"/etc/hosts": true, "/etc/hostname": true, "/etc/resolv.conf": true,
	"/proc": true, "/sys": true, "/dev": true}

// isWhiteout tells an overlayfs whiteout: a character device 0/0.
func isWhiteout(st *unix.Stat_t) bool {
	return st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == 0
}

// Package volume owns the data that outlives containers: bind mounts of
// host paths and named volumes kept under <root>/volumes. The runtime
// (package oci) mounts both into a container's root file system.
//
// A container's own writes land in its overlay's upper layer, which is
// removed with the container. Whatever must survive it — a database's
// files, a build cache — goes in a volume instead: a directory on the
// host that is bind-mounted into the container at a path of its choice.
//
// Three parts:
//
//   - ParseSpec reads the -v flag: "/host/path:/in/container[:ro|:rw]"
//     (a bind mount) or "NAME:/in/container[:ro|:rw]" (a named volume).
//   - Store keeps named volumes, each a directory
//     <root>/volumes/NAME/_data with a volume.json beside it. A new, empty
//     volume is seeded with what the image has at the mount point (Seed,
//     SeedIn), as Docker does.
//   - SortMounts orders the mounts parents first, and Resolve gives each
//     its host source: the container's bundle lists them so, and the
//     runtime mounts them, resolving each destination inside the root
//     (see final/internal/oci/mounts.go).
package volume

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/gocell/gocell/final/internal/names"
)

// Sentinel errors the CLI maps to messages and exit codes with errors.Is.
var (
	// ErrInvalid means a -v spec, a volume name or a mount is malformed.
	ErrInvalid = errors.New("invalid volume")
	// ErrNotFound means no volume has that name.
	ErrNotFound = errors.New("no such volume")
	// ErrInUse means a container still uses the volume.
	ErrInUse = errors.New("volume is in use")
)

// Mount is one -v flag: what to mount, where, and how.
type Mount struct {
	// Source is an absolute host path for a bind mount, or a volume's
	// name when Named is set.
	Source string
	// Destination is the absolute path inside the container.
	Destination string
	// ReadOnly makes the mount read-only inside the container.
	ReadOnly bool
	// Named says Source is a volume name, not a host path.
	Named bool
}

// String gives the mount back in the -v syntax.
func (m Mount) String() string {
	s := m.Source + ":" + m.Destination
	if m.ReadOnly {
		s += ":ro"
	}
	return s
}

// ValidateName checks a volume name: Docker's rule, and at most
// names.MaxVolume characters. A name can hold no "/", so it is never
// mistaken for a path, and cannot start with ".", so "." and ".." are not
// names and the store's own temporary entries (".new-*", ".rm-*") never
// clash with a volume.
func ValidateName(name string) error {
	if !names.Valid(name, names.MaxVolume) {
		return fmt.Errorf("%w: name %q: %s", ErrInvalid, name,
			names.Rule(names.MaxVolume))
	}
	return nil
}

// ParseSpec parses a -v flag:
//
//	/host/path:/ctr/path[:ro|:rw]   bind mount of a host path
//	NAME:/ctr/path[:ro|:rw]         named volume, created if need be
//
// A source that starts with "/" is a host path; one without any "/" is a
// volume name; anything else, like "data/x" or "./x", is a relative
// path, which is refused: it would depend on the directory gocell was
// started from. The destination must be absolute and not "/" (a volume
// cannot replace the whole root). Errors wrap ErrInvalid and name the
// part that is wrong.
func ParseSpec(s string) (Mount, error) {
	bad := func(format string, args ...any) (Mount, error) {
		return Mount{}, fmt.Errorf("%w: -v %q: %s", ErrInvalid, s,
			fmt.Sprintf(format, args...))
	}
	if strings.ContainsRune(s, 0) {
		return bad("contains a NUL byte")
	}
	parts := strings.Split(s, ":")
	switch {
	case len(parts) < 2:
		return bad("missing destination: want SOURCE:DEST[:ro|:rw]")
	case len(parts) > 3:
		return bad("too many fields (%d): want SOURCE:DEST[:ro|:rw]",
			len(parts))
	}
	src, dst := parts[0], parts[1]
	var m Mount
	if len(parts) == 3 {
		switch parts[2] {
		case "ro":
			m.ReadOnly = true
		case "rw":
		default:
			return bad("mode %q: want ro or rw", parts[2])
		}
	}

	switch {
	case src == "":
		return bad("empty source: want a host path or a volume name")
	case strings.HasPrefix(src, "/"):
		m.Source = filepath.Clean(src)
	case strings.Contains(src, "/") || src == "." || src == "..":
		return bad("source %q is a relative path: a bind mount needs "+
			"an absolute host path", src)
	default:
		if err := ValidateName(src); err != nil {
			return bad("source %q is not a valid volume name: %s",
				src, names.Rule(names.MaxVolume))
		}
		m.Source = src
		m.Named = true
	}

	switch {
	case dst == "":
		return bad("empty destination")
	case !strings.HasPrefix(dst, "/"):
		return bad("destination %q is not an absolute path", dst)
	}
	m.Destination = filepath.Clean(dst)
	if m.Destination == "/" {
		return bad("destination %q is the container's root", dst)
	}
	return m, nil
}

// Package inroot resolves paths inside a container's root file system as
// if that root were "/", never through the host's: the one rule every
// mount, seed and copy into a container's root follows.
//
// A container's root is an image, and anyone may have built it: any of
// its paths may be a symlink, absolute (/proc -> /realproc/self/root) or
// relative (../../../..), and a process in a container sharing a volume
// may change a directory into a symlink while we look. The kernel's
// ordinary path walk, from the host's point of view, would follow such a
// link out of the root: that is how runc's CVE-2019-16884 and
// CVE-2021-30465 and CVE-2025-52881 turned image paths into mounts over
// the host's files or a writable procfs.
//
// openat2(2) walks a path the safe way, given a directory file
// descriptor and flags:
//
//   - RESOLVE_IN_ROOT treats the descriptor as "/": an absolute symlink
//     starts again there, and ".." stops there;
//   - RESOLVE_NO_MAGICLINKS refuses /proc/PID/fd/N-style links, which
//     can jump anywhere, whatever the root;
//   - RESOLVE_NO_SYMLINKS refuses every symlink, for the paths a runtime
//     mounts its own file systems on (/proc, /sys, /dev): there the image
//     has no business pointing anywhere else;
//   - RESOLVE_BENEATH and RESOLVE_NO_XDEV keep a walk below a directory
//     and on one mount, for the paths masked inside /proc and /sys.
//
// What is resolved comes back as a file descriptor, and everything after
// acts on that descriptor (the *at calls, fstat, move_mount(2)): a name
// could be swapped between a check and its use, a descriptor cannot.
package inroot

import (
	"errors"
	"fmt"
	"strings"

	"golang.org/x/sys/unix"
)

// The usual ways to resolve, as openat2(2) flags.
const (
	// Follow symlinks, but inside the root: volume destinations.
	Follow = unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS
	// Follow no symlink at all: the mount points of /proc, /sys, /dev.
	NoSymlinks = unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_SYMLINKS
	// Below a directory, on its mount, through no symlink: masked paths.
	Beneath = unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_XDEV
)

// Open opens path under the directory rootFd with openat2(2) and the
// resolve flags. O_CLOEXEC is added.
func Open(rootFd int, path string, flags int, resolve uint64) (int, error) {
	how := unix.OpenHow{Flags: uint64(flags | unix.O_CLOEXEC), Resolve: resolve}
	for tries := 0; ; tries++ {
		fd, err := unix.Openat2(rootFd, path, &how)
		switch {
		// EAGAIN: something was renamed during the walk, so the
		// kernel cannot vouch that ".." stayed inside; just try again.
		case errors.Is(err, unix.EAGAIN) && tries < 16:
			continue
		case errors.Is(err, unix.ENOSYS):
			return -1, fmt.Errorf("openat2(2) %s: %w (Linux 5.6 or later is "+
				"needed to resolve paths in a container safely)", path, err)
		case errors.Is(err, unix.ELOOP) && resolve&unix.RESOLVE_NO_SYMLINKS != 0:
			return -1, fmt.Errorf("%s: a symlink, where the container's root "+
				"may have none: %w", path, err)
		case errors.Is(err, unix.EXDEV) && resolve&unix.RESOLVE_NO_XDEV != 0:
			return -1, fmt.Errorf("%s: another mount is in the way: %w", path, err)
		case err != nil:
			return -1, fmt.Errorf("openat2(2) %s: %w", path, err)
		}
		return fd, nil
	}
}

// Mkdir opens path inside rootFd as an O_PATH descriptor, first making
// the directories it lacks (mode 0755) and, when file is set, an empty
// file (0644) as its last component. Each component is resolved from
// the root again with the resolve flags, and each missing one is made
// with mkdirat(2) in its parent's descriptor, never through a path the
// kernel would resolve again from the host's "/". A component that is a
// dangling symlink is an error: its target would be made somewhere the
// image chose. The last component must be a directory, or a file when
// file is set; the ones above it, directories.
func Mkdir(rootFd int, path string, file bool, resolve uint64) (int, error) {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	parent, err := unix.Dup(rootFd)
	if err != nil {
		return -1, fmt.Errorf("dup: %w", err)
	}
	for i, name := range parts {
		last := i == len(parts)-1
		prefix := "/" + strings.Join(parts[:i+1], "/")
		fd, err := Open(rootFd, prefix, unix.O_PATH, resolve)
		if errors.Is(err, unix.ENOENT) {
			err = create(parent, name, last && file)
			if errors.Is(err, unix.EEXIST) {
				err = fmt.Errorf("%s is a dangling symlink or was made "+
					"as we looked: %w", prefix, err)
			}
			if err == nil {
				fd, err = Open(rootFd, prefix, unix.O_PATH, resolve)
			}
		}
		unix.Close(parent)
		if err != nil {
			return -1, err
		}
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			unix.Close(fd)
			return -1, fmt.Errorf("stat %s: %w", prefix, err)
		}
		dir := st.Mode&unix.S_IFMT == unix.S_IFDIR
		if wantDir := !file || !last; dir != wantDir {
			unix.Close(fd)
			if wantDir {
				return -1, fmt.Errorf("%s in the container: %w", prefix, unix.ENOTDIR)
			}
			return -1, fmt.Errorf("%s in the container, for a file: %w",
				prefix, unix.EISDIR)
		}
		parent = fd
	}
	return parent, nil
}

// create makes name in the directory dirfd: an empty file if file is
// set, else a directory. O_NOFOLLOW|O_EXCL and mkdirat(2) both refuse an
// existing entry, symlinks included.
func create(dirfd int, name string, file bool) error {
	if !file {
		// Equivalent to: mkdir DIR/NAME
		if err := unix.Mkdirat(dirfd, name, 0o755); err != nil {
			return fmt.Errorf("mkdir %s: %w", name, err)
		}
		return nil
	}
	fd, err := unix.Openat(dirfd, name, unix.O_WRONLY|unix.O_CREAT|
		unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return fmt.Errorf("create %s: %w", name, err)
	}
	return unix.Close(fd)
}

// SameFile tells whether two descriptors are the same file.
func SameFile(a, b int) (bool, error) {
	var sa, sb unix.Stat_t
	if err := unix.Fstat(a, &sa); err != nil {
		return false, fmt.Errorf("stat: %w", err)
	}
	if err := unix.Fstat(b, &sb); err != nil {
		return false, fmt.Errorf("stat: %w", err)
	}
	return sa.Dev == sb.Dev && sa.Ino == sb.Ino, nil
}

// FSType is the file system type of fd, such as unix.PROC_SUPER_MAGIC.
// fstatfs(2)
func FSType(fd int) (int64, error) {
	var fs unix.Statfs_t
	if err := unix.Fstatfs(fd, &fs); err != nil {
		return 0, fmt.Errorf("statfs: %w", err)
	}
	return fs.Type, nil
}

// Readlink reads the symlink name in the directory dirfd, however long
// its target. readlinkat(2)
func Readlink(dirfd int, name string) (string, error) {
	for size := 256; ; size *= 2 {
		buf := make([]byte, size)
		n, err := unix.Readlinkat(dirfd, name, buf)
		if err != nil {
			return "", err
		}
		if n < size {
			return string(buf[:n]), nil
		}
	}
}

package volume

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Seeding: when a container mounts a new, empty named volume at a path
// where its image has files (say /var/lib/postgresql/data), Docker first
// copies those files into the volume, so the program finds what its
// image promised. gocell does the same.
//
// The source is an image, so it is untrusted: it may hold symlinks to
// anywhere, such as /etc/shadow. The copy works on file descriptors,
// opening every entry relative to its parent directory with O_NOFOLLOW:
// symlinks are copied as symlinks and never followed, so nothing outside
// the source can be read into the volume. Modes, owners, times, symlinks,
// hard links and FIFOs are kept. Device nodes and sockets are skipped: a
// device node in a volume would outlive the container, and image unpack
// refuses them anyway. Extended attributes are not copied.

// Seed copies the directory source into volumeDir, if volumeDir is
// empty; if not, it does nothing, so it is safe to call on every start.
// A source that does not exist, is not a directory, or is itself a
// symlink gives nothing to copy and is not an error.
//
// Only the last component of source is checked: the directories above
// it must be trusted. For a path inside a container's root, use SeedIn,
// which resolves it the way MountAll does.
func Seed(volumeDir, source string) error {
	src, err := unix.Open(source,
		unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if nothingToSeed(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("seed volume from %s: %w", source,
			&os.PathError{Op: "open", Path: source, Err: err})
	}
	f := os.NewFile(uintptr(src), source)
	defer f.Close()
	if err := seedFrom(volumeDir, f); err != nil {
		return fmt.Errorf("seed volume from %s: %w", source, err)
	}
	return nil
}

// SeedIn is Seed from the path dest inside the container root root (the
// merged overlay, before pivot_root), resolved as if root were "/": a
// symlink in the image (dest -> /etc) leads to root/etc, never to the
// host's /etc.
func SeedIn(volumeDir, root, dest string) error {
	rootFd, err := unix.Open(root,
		unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("seed volume: open root %s: %w", root, err)
	}
	defer unix.Close(rootFd)
	src, err := openInRoot(rootFd, dest,
		unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC)
	if nothingToSeed(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("seed volume from %s in %s: %w", dest, root, err)
	}
	f := os.NewFile(uintptr(src), filepath.Join(root, dest))
	defer f.Close()
	if err := seedFrom(volumeDir, f); err != nil {
		return fmt.Errorf("seed volume from %s in %s: %w", dest, root, err)
	}
	return nil
}

// nothingToSeed tells the errors that mean "no directory there".
func nothingToSeed(err error) bool {
	return errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) ||
		errors.Is(err, unix.ELOOP)
}

// seedFrom copies the open directory src into volumeDir if it is empty,
// then gives volumeDir src's owner, mode and times: the image decides
// who may write to the mount point, e.g. a database's own user.
func seedFrom(volumeDir string, src *os.File) error {
	dst, err := os.Open(volumeDir)
	if err != nil {
		return err
	}
	defer dst.Close()
	if _, err := dst.Readdirnames(1); err != io.EOF {
		if err != nil {
			return fmt.Errorf("read %s: %w", volumeDir, err)
		}
		return nil // not empty: already seeded, or written by a container
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(src.Fd()), &st); err != nil {
		return fmt.Errorf("stat source: %w", err)
	}
	c := copier{root: int(dst.Fd()), links: map[inode]string{}}
	if err := c.copyDir(src, int(dst.Fd()), "."); err != nil {
		return err
	}
	return setMeta(unix.AT_FDCWD, volumeDir, &st)
}

// inode identifies a file, to find the other names of a hard link.
type inode struct{ dev, ino uint64 }

// copier copies one tree; root is the destination's top directory.
type copier struct {
	root  int
	links map[inode]string // first copy of each hard-linked file
}

// copyDir copies the entries of the directory src into the directory
// dst. rel is dst's path below the copy's root, for hard links.
func (c *copier) copyDir(src *os.File, dst int, rel string) error {
	names, err := src.Readdirnames(-1)
	if err != nil {
		return fmt.Errorf("read %s: %w", rel, err)
	}
	sfd := int(src.Fd())
	for _, name := range names {
		if err := c.copyEntry(sfd, dst, name, filepath.Join(rel, name)); err != nil {
			return fmt.Errorf("copy %s: %w", filepath.Join(rel, name), err)
		}
	}
	return nil
}

// copyEntry copies one entry, name, from the directory sfd to dfd.
func (c *copier) copyEntry(sfd, dfd int, name, rel string) error {
	var st unix.Stat_t
	// Look at the entry itself, never where a symlink points.
	if err := unix.Fstatat(sfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return err
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		if err := unix.Mkdirat(dfd, name, 0o700); err != nil {
			return err
		}
		in, err := openAt(sfd, name, unix.O_RDONLY|unix.O_DIRECTORY)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := openAt(dfd, name, unix.O_RDONLY|unix.O_DIRECTORY)
		if err != nil {
			return err
		}
		defer out.Close()
		if err := c.copyDir(in, int(out.Fd()), rel); err != nil {
			return err
		}
	case unix.S_IFREG:
		key := inode{uint64(st.Dev), st.Ino}
		if first, ok := c.links[key]; ok && st.Nlink > 1 {
			// Another name of a file already copied: link, not copy.
			return unix.Linkat(c.root, first, dfd, name, 0)
		}
		if st.Nlink > 1 {
			c.links[key] = rel
		}
		if err := copyFile(sfd, dfd, name); err != nil {
			return err
		}
	case unix.S_IFLNK:
		target, err := readlinkAt(sfd, name)
		if err != nil {
			return err
		}
		if err := unix.Symlinkat(target, dfd, name); err != nil {
			return err
		}
	case unix.S_IFIFO:
		if err := unix.Mknodat(dfd, name, unix.S_IFIFO|0o600, 0); err != nil {
			return err
		}
	default:
		return nil // device nodes and sockets: see the top of the file
	}
	return setMeta(dfd, name, &st)
}

// copyFile copies the regular file name from sfd to a new file in dfd.
func copyFile(sfd, dfd int, name string) error {
	in, err := openAt(sfd, name, unix.O_RDONLY)
	if err != nil {
		return err
	}
	defer in.Close()
	// O_EXCL: a fresh file, never one already there or a symlink's target.
	out, err := openAt(dfd, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// setMeta gives the entry name in dirfd the owner, mode and times of st.
// The owner goes first: chown(2) clears the set-user-ID and set-group-ID
// bits, which the mode then puts back. Nothing here follows a symlink.
func setMeta(dirfd int, name string, st *unix.Stat_t) error {
	// Equivalent to: chown -h UID:GID name
	err := unix.Fchownat(dirfd, name, int(st.Uid), int(st.Gid),
		unix.AT_SYMLINK_NOFOLLOW)
	if err != nil {
		return fmt.Errorf("chown: %w", err)
	}
	// A symlink's own mode means nothing, and fchmodat(2) would follow it.
	if st.Mode&unix.S_IFMT != unix.S_IFLNK {
		err := unix.Fchmodat(dirfd, name, st.Mode&0o7777, 0)
		if err != nil {
			return fmt.Errorf("chmod: %w", err)
		}
	}
	ts := []unix.Timespec{st.Atim, st.Mtim}
	err = unix.UtimesNanoAt(dirfd, name, ts, unix.AT_SYMLINK_NOFOLLOW)
	if err != nil {
		return fmt.Errorf("set times: %w", err)
	}
	return nil
}

// openAt opens name in dirfd without following a symlink, as an
// *os.File that owns the descriptor. New files get mode 0600 until
// setMeta gives them theirs.
func openAt(dirfd int, name string, flags int) (*os.File, error) {
	fd, err := unix.Openat(dirfd, name,
		flags|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), name), nil
}

// readlinkAt reads the symlink name in dirfd, however long its target.
func readlinkAt(dirfd int, name string) (string, error) {
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

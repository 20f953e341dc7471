package volume

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"unsafe"

	"github.com/gocell/gocell/final/internal/inroot"
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
// which resolves it inside the root, as the runtime resolves a mount.
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
	src, err := inroot.Open(rootFd, dest, unix.O_RDONLY|unix.O_DIRECTORY,
		inroot.Follow)
	if nothingToSeed(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("seed volume from %s in %s: %w", dest, root, err)
	}
	f := os.NewFile(uintptr(src), filepath.Join(root, dest))
	defer f.Close()
	if err := notKernelFS(src, dest); err != nil {
		return err
	}
	// Nor the root itself (dest -> /): a copy of the whole image.
	if same, err := inroot.SameFile(src, rootFd); err != nil || same {
		if err == nil {
			err = fmt.Errorf("%w: %s resolves to the container's root", ErrInvalid, dest)
		}
		return err
	}
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
//
// The volume is not the image: a container already running with the
// same volume can change it while we copy, swapping a directory we just
// made for a symlink to /etc, say. So the copy never names a path in the
// volume twice: each entry is made with O_EXCL|O_NOFOLLOW (or mkdirat,
// symlinkat, mknodat, which never follow), opened at once without
// following, and everything after (the data, owner, mode, times, the
// entries below a directory, a hard link to it) goes through that file
// descriptor. A swap makes the copy fail, or land in another directory
// of the volume: never outside it.
func seedFrom(volumeDir string, src *os.File) error {
	dst, err := os.OpenFile(volumeDir, os.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW, 0)
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
	c := copier{links: map[inode]*link{}, afterCreate: seedHook}
	defer c.close()
	if err := c.copyDir(src, int(dst.Fd()), "."); err != nil {
		return err
	}
	return setMeta(int(dst.Fd()), &st)
}

// seedHook is copier.afterCreate for every seed: set by tests only.
var seedHook func(dirfd int, name string)

// inode identifies a file, to find the other names of a hard link.
type inode struct{ dev, ino uint64 }

// link is the first copy of a hard-linked file: an O_PATH descriptor of
// it, kept while more names of it may come.
type link struct {
	fd   int
	left uint64 // names not yet met
}

// copier copies one tree.
type copier struct {
	links map[inode]*link
	// afterCreate, if set, runs after each entry is made and before it
	// is opened: the tests swap it for a symlink there, as a neighbour
	// container could.
	afterCreate func(dirfd int, name string)
}

func (c *copier) close() {
	for _, l := range c.links {
		unix.Close(l.fd)
	}
}

// copyDir copies the entries of the directory src into the directory
// dst. rel is dst's path below the copy's root, for messages.
func (c *copier) copyDir(src *os.File, dst int, rel string) error {
	names, err := src.Readdirnames(-1)
	if err != nil {
		return fmt.Errorf("read %s: %w", rel, err)
	}
	sfd := int(src.Fd())
	for _, name := range names {
		if err := c.copyEntry(sfd, dst, name); err != nil {
			return fmt.Errorf("copy %s: %w", filepath.Join(rel, name), err)
		}
	}
	return nil
}

// copyEntry copies one entry, name, from the directory sfd to dfd.
func (c *copier) copyEntry(sfd, dfd int, name string) error {
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
		c.created(dfd, name)
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
		if err := c.copyDir(in, int(out.Fd()), name); err != nil {
			return err
		}
		return setMeta(int(out.Fd()), &st)
	case unix.S_IFREG:
		key := inode{uint64(st.Dev), st.Ino}
		if l, ok := c.links[key]; ok {
			// Another name of a file already copied: link, not copy,
			// from the descriptor (needs CAP_DAC_READ_SEARCH). linkat(2)
			err := unix.Linkat(l.fd, "", dfd, name, unix.AT_EMPTY_PATH)
			if l.left--; l.left == 0 {
				unix.Close(l.fd)
				delete(c.links, key)
			}
			return err
		}
		out, err := c.copyFile(sfd, dfd, name)
		if err != nil {
			return err
		}
		defer out.Close()
		if err := setMeta(int(out.Fd()), &st); err != nil {
			return err
		}
		if st.Nlink > 1 {
			fd, err := unix.Open(fdPath(int(out.Fd())), unix.O_PATH|unix.O_CLOEXEC, 0)
			if err != nil {
				return err
			}
			c.links[key] = &link{fd: fd, left: uint64(st.Nlink) - 1}
		}
		return nil
	case unix.S_IFLNK:
		target, err := inroot.Readlink(sfd, name)
		if err != nil {
			return err
		}
		if err := unix.Symlinkat(target, dfd, name); err != nil {
			return err
		}
		c.created(dfd, name)
		// A symlink cannot be opened; these two never follow one, and
		// a symlink's own mode means nothing.
		err = unix.Fchownat(dfd, name, int(st.Uid), int(st.Gid), unix.AT_SYMLINK_NOFOLLOW)
		if err != nil {
			return fmt.Errorf("chown: %w", err)
		}
		ts := []unix.Timespec{st.Atim, st.Mtim}
		return unix.UtimesNanoAt(dfd, name, ts, unix.AT_SYMLINK_NOFOLLOW)
	case unix.S_IFIFO:
		if err := unix.Mknodat(dfd, name, unix.S_IFIFO|0o600, 0); err != nil {
			return err
		}
		c.created(dfd, name)
		// Opened without waiting for a writer, to set its metadata.
		out, err := openAt(dfd, name, unix.O_RDONLY|unix.O_NONBLOCK)
		if err != nil {
			return err
		}
		defer out.Close()
		return setMeta(int(out.Fd()), &st)
	}
	return nil // device nodes and sockets: see the top of the file
}

// created runs the test hook, if any.
func (c *copier) created(dirfd int, name string) {
	if c.afterCreate != nil {
		c.afterCreate(dirfd, name)
	}
}

// copyFile copies the regular file name from sfd to a new file in dfd and
// returns the new file, open for writing.
func (c *copier) copyFile(sfd, dfd int, name string) (*os.File, error) {
	in, err := openAt(sfd, name, unix.O_RDONLY)
	if err != nil {
		return nil, err
	}
	defer in.Close()
	// O_EXCL: a fresh file, never one already there or a symlink's target.
	out, err := openAt(dfd, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL)
	if err != nil {
		return nil, err
	}
	c.created(dfd, name)
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return nil, err
	}
	return out, nil
}

// setMeta gives the open file fd the owner, mode and times of st. The
// owner goes first: chown(2) clears the set-user-ID and set-group-ID
// bits, which the mode then puts back. fchown(2), fchmod(2), futimens(3)
func setMeta(fd int, st *unix.Stat_t) error {
	if err := unix.Fchown(fd, int(st.Uid), int(st.Gid)); err != nil {
		return fmt.Errorf("chown: %w", err)
	}
	if err := unix.Fchmod(fd, st.Mode&0o7777); err != nil {
		return fmt.Errorf("chmod: %w", err)
	}
	// utimensat(2) with a NULL path sets the times of fd itself.
	ts := [2]unix.Timespec{st.Atim, st.Mtim}
	_, _, e := unix.Syscall6(unix.SYS_UTIMENSAT, uintptr(fd), 0,
		uintptr(unsafe.Pointer(&ts[0])), 0, 0, 0)
	if e != 0 {
		return fmt.Errorf("set times: %w", e)
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

// notKernelFS refuses a destination in the container's /proc or /sys,
// reached directly or through a symlink in the image (/data ->
// /proc/sys): a seed from there would copy the kernel's files into a
// volume. (The runtime refuses to mount there too.) fstatfs(2)
func notKernelFS(fd int, dest string) error {
	fs, err := inroot.FSType(fd)
	if err != nil {
		return err
	}
	if fs == unix.PROC_SUPER_MAGIC || fs == unix.SYSFS_MAGIC {
		return fmt.Errorf("%w: %s is in the container's /proc or /sys", ErrInvalid, dest)
	}
	return nil
}

// fdPath is the magic link to an open descriptor of this process.
func fdPath(fd int) string { return "/proc/self/fd/" + strconv.Itoa(fd) }

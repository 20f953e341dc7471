package image

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// The names OCI layers use for deletions. A layer that deletes /etc/motd
// carries an empty file etc/.wh.motd; a layer that replaces a whole
// directory carries DIR/.wh..wh..opq ("opaque": hide everything below).
const (
	whiteoutPrefix = ".wh."
	whiteoutMeta   = ".wh..wh."
	opaqueMarker   = ".wh..wh..opq"
)

// overlayfs's own spelling of the same two ideas: a whiteout is a char
// device 0/0, an opaque directory has this xattr set to "y"
// (Documentation/filesystems/overlayfs.rst, "whiteouts and opaque
// directories"). Only root may create either.
const opaqueXattr = "trusted.overlay.opaque"

// unpackOptions says how to unpack one tar.
type unpackOptions struct {
	// whiteouts turns .wh. entries into overlayfs whiteouts. Off for tars
	// that are not layers (an OCI layout archive being imported).
	whiteouts bool
	// sameOwner applies the uid/gid of each entry. Only root can; like
	// tar(1), an unprivileged unpack leaves files owned by the caller.
	sameOwner bool
	// maxEntries, if not 0, is the most entries the tar may have, and
	// maxBytes the most bytes of file content it may write.
	maxEntries int
	maxBytes   int64
}

// unpacker writes the entries of one tar into one directory. It never
// resolves a path with the kernel's usual rules: it walks each name one
// component at a time from a directory file descriptor with O_NOFOLLOW,
// so a symlink in the tar can never redirect a later write. Symlinks are
// created as data; whoever reads the layer through overlayfs inside the
// container's root resolves them there.
type unpacker struct {
	root int // fd of the destination directory
	opt  unpackOptions
	// dirs are applied last: their mode may forbid writing into them, and
	// every entry created inside them would bump their mtime.
	dirs  []pendingDir
	index map[string]int // path → position in dirs, so the last entry wins
	size  int64          // bytes of regular file content written
}

// pendingDir is a directory whose metadata is set when the tar is done.
type pendingDir struct {
	parts []string
	hdr   *tar.Header
}

// unsafe builds an ErrUnsafeLayer error.
func unsafe(format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), ErrUnsafeLayer)
}

// unpack extracts the tar read from r into dir, which must exist, and
// returns the number of bytes of file content written. On error dir holds
// a partial tree; the caller unpacks into a temporary directory and
// removes it.
func unpack(r io.Reader, dir string, opt unpackOptions) (int64, error) {
	root, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|
		unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("open %s: %w", dir, err)
	}
	defer unix.Close(root)
	u := &unpacker{root: root, opt: opt, index: map[string]int{}}
	tr := tar.NewReader(r)
	for n := 1; ; n++ {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return 0, fmt.Errorf("read tar: %w", err)
		}
		if opt.maxEntries > 0 && n > opt.maxEntries {
			return 0, fmt.Errorf("%w: more than %d entries", ErrTooLarge, opt.maxEntries)
		}
		if err := u.entry(tr, hdr); err != nil {
			return 0, fmt.Errorf("tar entry %q: %w", hdr.Name, err)
		}
	}
	if err := u.finishDirs(); err != nil {
		return 0, err
	}
	return u.size, nil
}

// splitName turns a tar entry name into path components, refusing names
// that could leave the layer. "./a//b/" is fine and becomes [a b].
// Absolute names are refused rather than re-rooted: image builders never
// write them, so one in a layer is a bug or an attack.
func splitName(name string) ([]string, error) {
	if strings.HasPrefix(name, "/") {
		return nil, unsafe("absolute path %q; layer entries are relative "+
			"to the layer root", name)
	}
	var parts []string
	for _, c := range strings.Split(name, "/") {
		switch c {
		case "", ".":
			continue
		case "..":
			return nil, unsafe("%q has a \"..\" component that would "+
				"leave the layer", name)
		}
		parts = append(parts, c)
	}
	return parts, nil
}

// openDir opens the directory parts[0]/parts[1]/… below the root, one
// component at a time, refusing to pass through a symlink. With create,
// missing directories are made (tars often omit parent entries). The
// caller closes the returned fd.
func (u *unpacker) openDir(parts []string, create bool) (int, error) {
	cur, err := unix.FcntlInt(uintptr(u.root), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("dup: %w", err)
	}
	for i, c := range parts {
		next, err := openDirAt(cur, c)
		if errors.Is(err, unix.ENOENT) && create {
			if err = unix.Mkdirat(cur, c, 0o755); err == nil {
				next, err = openDirAt(cur, c)
			}
		}
		// O_DIRECTORY|O_NOFOLLOW on a symlink fails with ENOTDIR (or
		// ELOOP, depending on which check the kernel makes first); ask
		// which it was, for a clear message.
		var st unix.Stat_t
		isLink := (errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.ELOOP)) &&
			unix.Fstatat(cur, c, &st, unix.AT_SYMLINK_NOFOLLOW) == nil &&
			st.Mode&unix.S_IFMT == unix.S_IFLNK
		unix.Close(cur)
		here := strings.Join(parts[:i+1], "/")
		switch {
		case isLink:
			return -1, unsafe("%s is a symlink; unpacking never "+
				"writes through symlinks", here)
		case errors.Is(err, unix.ENOTDIR):
			return -1, fmt.Errorf("%s is not a directory", here)
		case errors.Is(err, unix.ENOENT):
			return -1, fmt.Errorf("%s: %w", here, os.ErrNotExist)
		case err != nil:
			return -1, fmt.Errorf("open %s: %w", here, err)
		}
		cur = next
	}
	return cur, nil
}

// openDirAt opens the directory name inside dirfd; a symlink there fails
// (ENOTDIR or ELOOP) instead of being followed.
func openDirAt(dirfd int, name string) (int, error) {
	return unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|
		unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
}

// entry writes one tar entry.
func (u *unpacker) entry(r io.Reader, hdr *tar.Header) error {
	if hdr.Typeflag == tar.TypeXGlobalHeader {
		return nil // pax metadata for the whole archive; nothing to write
	}
	parts, err := splitName(hdr.Name)
	if err != nil {
		return err
	}
	if len(parts) == 0 {
		// "./" itself: the layer root's own mode and owner.
		if hdr.Typeflag != tar.TypeDir {
			return unsafe("entry for the layer root is not a directory")
		}
		u.pendingDir(parts, hdr)
		return nil
	}
	base := parts[len(parts)-1]
	if u.opt.whiteouts && strings.HasPrefix(base, whiteoutPrefix) {
		return u.whiteout(parts[:len(parts)-1], base)
	}
	dirfd, err := u.openDir(parts[:len(parts)-1], true)
	if err != nil {
		return err
	}
	defer unix.Close(dirfd)

	switch hdr.Typeflag {
	case tar.TypeDir:
		return u.mkdir(dirfd, parts, hdr)
	case tar.TypeReg:
		return u.file(dirfd, base, hdr, r)
	case tar.TypeSymlink:
		if err := removeAt(dirfd, base); err != nil {
			return err
		}
		if err := unix.Symlinkat(hdr.Linkname, dirfd, base); err != nil {
			return fmt.Errorf("symlink: %w", err)
		}
		return u.meta(dirfd, base, hdr, -1)
	case tar.TypeLink:
		return u.hardlink(dirfd, parts, hdr)
	case tar.TypeFifo:
		if err := removeAt(dirfd, base); err != nil {
			return err
		}
		if err := unix.Mknodat(dirfd, base, unix.S_IFIFO|0o600, 0); err != nil {
			return fmt.Errorf("mkfifo: %w", err)
		}
		return u.meta(dirfd, base, hdr, -1)
	case tar.TypeChar, tar.TypeBlock:
		// A device node in an image would hand the container whatever
		// device it names (a disk, /dev/mem) behind the runtime's back.
		// Containers get their /dev from the runtime instead.
		return unsafe("device node %d:%d; images may not carry device "+
			"nodes", hdr.Devmajor, hdr.Devminor)
	default:
		return fmt.Errorf("unsupported tar entry type %q", hdr.Typeflag)
	}
}

// whiteout translates an OCI whiteout entry (.wh.NAME or .wh..wh..opq in
// the directory dir) to its overlayfs form.
func (u *unpacker) whiteout(dir []string, base string) error {
	dirfd, err := u.openDir(dir, true)
	if err != nil {
		return err
	}
	defer unix.Close(dirfd)
	if base == opaqueMarker {
		// Equivalent to: setfattr -n trusted.overlay.opaque -v y DIR
		err := unix.Fsetxattr(dirfd, opaqueXattr, []byte("y"), 0)
		if err != nil {
			return fmt.Errorf("mark directory opaque (setxattr %s; "+
				"needs root): %w", opaqueXattr, err)
		}
		return nil
	}
	if strings.HasPrefix(base, whiteoutMeta) {
		return nil // other aufs bookkeeping (.wh..wh.plnk …): no meaning here
	}
	name := strings.TrimPrefix(base, whiteoutPrefix)
	if name == "" || name == "." || name == ".." {
		return unsafe("malformed whiteout %q", base)
	}
	// A whiteout hides what the layers below hold. If this layer itself
	// has NAME, that entry already hides them (OCI image spec, "Whiteouts").
	var st unix.Stat_t
	err = unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW)
	if err == nil {
		return nil
	}
	// Equivalent to: mknod NAME c 0 0
	if err := unix.Mknodat(dirfd, name, unix.S_IFCHR, 0); err != nil {
		return fmt.Errorf("create whiteout %s (mknod c 0 0; needs root): %w",
			name, err)
	}
	return nil
}

// mkdir makes a directory, or keeps the one already there (a tar may list a
// directory after files in it, or twice). Its metadata is set at the end.
func (u *unpacker) mkdir(dirfd int, parts []string, hdr *tar.Header) error {
	base := parts[len(parts)-1]
	var st unix.Stat_t
	err := unix.Fstatat(dirfd, base, &st, unix.AT_SYMLINK_NOFOLLOW)
	if err != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR {
		if err := removeAt(dirfd, base); err != nil {
			return err
		}
		// 0700 until finishDirs sets the real mode.
		if err := unix.Mkdirat(dirfd, base, 0o700); err != nil {
			return fmt.Errorf("mkdir: %w", err)
		}
	}
	u.pendingDir(parts, hdr)
	return nil
}

// pendingDir remembers a directory's header for finishDirs.
func (u *unpacker) pendingDir(parts []string, hdr *tar.Header) {
	key := strings.Join(parts, "/")
	if i, ok := u.index[key]; ok {
		u.dirs[i].hdr = hdr
		return
	}
	u.index[key] = len(u.dirs)
	u.dirs = append(u.dirs, pendingDir{parts: parts, hdr: hdr})
}

// file writes a regular file. O_EXCL|O_NOFOLLOW after removing whatever was
// there means a symlink left by an earlier entry is replaced, not written
// through.
func (u *unpacker) file(dirfd int, base string, hdr *tar.Header, r io.Reader) error {
	if err := removeAt(dirfd, base); err != nil {
		return err
	}
	fd, err := unix.Openat(dirfd, base, unix.O_WRONLY|unix.O_CREAT|
		unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("create: %w", err)
	}
	f := os.NewFile(uintptr(fd), base)
	defer f.Close()
	if u.opt.maxBytes > 0 {
		// What is written counts, not what was read: a sparse entry
		// (PAX GNU.sparse) of a few bytes in the tar comes out as
		// all the zeros of its holes.
		r = io.LimitReader(r, u.opt.maxBytes-u.size+1)
	}
	n, err := io.Copy(f, r)
	u.size += n
	if err != nil {
		return fmt.Errorf("write: %w", err)
	}
	if u.opt.maxBytes > 0 && u.size > u.opt.maxBytes {
		return fmt.Errorf("%w: its files hold more than %d bytes", ErrTooLarge, u.opt.maxBytes)
	}
	return u.meta(dirfd, base, hdr, fd)
}

// hardlink links to a file earlier in this same layer. The target name
// obeys the same rules as entry names, and is resolved the same way.
func (u *unpacker) hardlink(dirfd int, parts []string, hdr *tar.Header) error {
	target, err := splitName(hdr.Linkname)
	if err != nil {
		return fmt.Errorf("hardlink target: %w", err)
	}
	if len(target) == 0 {
		return unsafe("hardlink to the layer root")
	}
	tdir, err := u.openDir(target[:len(target)-1], false)
	if errors.Is(err, os.ErrNotExist) {
		return unsafe("hardlink target %q is not in this layer", hdr.Linkname)
	}
	if err != nil {
		return fmt.Errorf("hardlink target: %w", err)
	}
	defer unix.Close(tdir)
	tbase := target[len(target)-1]
	var st unix.Stat_t
	err = unix.Fstatat(tdir, tbase, &st, unix.AT_SYMLINK_NOFOLLOW)
	if errors.Is(err, unix.ENOENT) {
		return unsafe("hardlink target %q is not in this layer", hdr.Linkname)
	}
	if err != nil {
		return fmt.Errorf("hardlink target %q: %w", hdr.Linkname, err)
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		return unsafe("hardlink to directory %q", hdr.Linkname)
	}
	base := parts[len(parts)-1]
	if strings.Join(target, "/") == strings.Join(parts, "/") {
		return nil // a link to itself: already there
	}
	if err := removeAt(dirfd, base); err != nil {
		return err
	}
	// Flags 0: if the target is a symlink, link the symlink, not the file
	// it points to.
	if err := unix.Linkat(tdir, tbase, dirfd, base, 0); err != nil {
		return fmt.Errorf("link to %q: %w", hdr.Linkname, err)
	}
	return nil
}

// meta sets owner, mode, xattrs and times of base in dirfd from hdr, in
// that order: chown clears set-uid bits and file capabilities, so it must
// come first. fd, if not -1, is an open fd of base for the xattrs.
func (u *unpacker) meta(dirfd int, base string, hdr *tar.Header, fd int) error {
	if u.opt.sameOwner {
		// Equivalent to: chown -h UID:GID base
		err := unix.Fchownat(dirfd, base, hdr.Uid, hdr.Gid,
			unix.AT_SYMLINK_NOFOLLOW)
		if err != nil {
			return fmt.Errorf("chown: %w", err)
		}
	}
	if hdr.Typeflag != tar.TypeSymlink {
		// base is not a symlink (we just created it in a directory we
		// hold open), so fchmodat, which always follows, is safe here.
		mode := uint32(hdr.Mode) & 0o7777
		if err := unix.Fchmodat(dirfd, base, mode, 0); err != nil {
			return fmt.Errorf("chmod: %w", err)
		}
	}
	if fd >= 0 {
		if err := setXattrs(fd, hdr); err != nil {
			return err
		}
	}
	atime := hdr.AccessTime
	if atime.IsZero() {
		atime = hdr.ModTime
	}
	ts := []unix.Timespec{
		unix.NsecToTimespec(atime.UnixNano()),
		unix.NsecToTimespec(hdr.ModTime.UnixNano()),
	}
	err := unix.UtimesNanoAt(dirfd, base, ts, unix.AT_SYMLINK_NOFOLLOW)
	if err != nil {
		return fmt.Errorf("set times: %w", err)
	}
	return nil
}

// setXattrs applies the extended attributes a tar carries as
// SCHILY.xattr.* pax records. Only user.* and file capabilities are kept:
// trusted.* would let a layer forge overlayfs metadata (opaque, redirect)
// and security.selinux labels belong to the host's policy, not the image.
func setXattrs(fd int, hdr *tar.Header) error {
	for k, v := range hdr.PAXRecords {
		attr, ok := strings.CutPrefix(k, "SCHILY.xattr.")
		if !ok || !keepXattr(attr) {
			continue
		}
		err := unix.Fsetxattr(fd, attr, []byte(v), 0)
		if errors.Is(err, unix.EOPNOTSUPP) {
			continue // the file system cannot store it; nor could Docker
		}
		if err != nil {
			return fmt.Errorf("setxattr %s: %w", attr, err)
		}
	}
	return nil
}

// keepXattr says which extended attributes move between images and the
// file system (see setXattrs). user.overlay.* is overlayfs's metadata
// when mounted with -o userxattr, so it is as off limits as trusted.*.
func keepXattr(attr string) bool {
	return attr == "security.capability" ||
		strings.HasPrefix(attr, "user.") && !strings.HasPrefix(attr, "user.overlay.")
}

// finishDirs sets the metadata of every directory entry, deepest last
// listed first, so that a read-only directory is made read-only only after
// everything inside it is written.
func (u *unpacker) finishDirs() error {
	for i := len(u.dirs) - 1; i >= 0; i-- {
		d := u.dirs[i]
		if err := u.finishDir(d); err != nil {
			return fmt.Errorf("directory %q: %w", d.hdr.Name, err)
		}
	}
	return nil
}

// finishDir applies one directory's header.
func (u *unpacker) finishDir(d pendingDir) error {
	parent, base := d.parts, "."
	if n := len(d.parts); n > 0 {
		parent, base = d.parts[:n-1], d.parts[n-1]
	}
	dirfd, err := u.openDir(parent, false)
	if err != nil {
		return err
	}
	defer unix.Close(dirfd)
	fd, err := openDirAt(dirfd, base)
	if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) ||
		errors.Is(err, unix.ENOENT) {
		return nil // a later entry replaced the directory
	}
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return u.meta(dirfd, base, d.hdr, fd)
}

// removeAt removes name from dirfd, recursively if it is a directory,
// without following symlinks. A missing name is not an error: this is how
// a tar entry replaces an earlier one of the same name.
func removeAt(dirfd int, name string) error {
	err := unix.Unlinkat(dirfd, name, 0)
	if err == nil || errors.Is(err, unix.ENOENT) {
		return nil
	}
	if !errors.Is(err, unix.EISDIR) {
		return fmt.Errorf("remove %s: %w", name, err)
	}
	fd, err := openDirAt(dirfd, name)
	if err != nil {
		return fmt.Errorf("remove %s: %w", name, err)
	}
	f := os.NewFile(uintptr(fd), name)
	names, err := f.Readdirnames(-1)
	if err == nil {
		for _, n := range names {
			if err = removeAt(fd, n); err != nil {
				break
			}
		}
	}
	f.Close()
	if err != nil {
		return err
	}
	if err := unix.Unlinkat(dirfd, name, unix.AT_REMOVEDIR); err != nil {
		return fmt.Errorf("remove %s: %w", name, err)
	}
	return nil
}

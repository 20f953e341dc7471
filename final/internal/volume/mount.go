package volume

import (
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Why mounting a volume needs care: the symlink race of CVE-2021-30465.
//
// A volume's destination is a path inside the container's root, and that
// root is an image: anyone may have built it. The obvious code,
//
//	mount(source, filepath.Join(root, "/data"), "", MS_BIND, "")
//
// lets the kernel resolve root/data as a host path. If the image has
// /data -> /etc, the volume is mounted over the host's /etc (in the
// container's mount namespace, but before pivot_root that namespace still
// shows the host's files, and the container then sees them). A relative
// link, /data -> ../../../../root/.ssh, climbs out of root the same way.
// Checking first with filepath.EvalSymlinks and mounting after does not
// help: in runc's CVE-2021-30465 a second container that shared the
// volume swapped a directory for a symlink between runc's check and its
// mount(2), and got the host's root file system mounted inside.
//
// The defence has two halves, and this is where they live:
//
//  1. Resolve inside the root. openat2(2) with RESOLVE_IN_ROOT walks the
//     path as if root were "/" — an absolute symlink starts again at root,
//     and ".." stops at it — so /data -> /etc opens root/etc and
//     ../../../.. opens root itself. RESOLVE_NO_MAGICLINKS refuses the
//     /proc/PID/fd/N kind of link, which could jump anywhere. Missing
//     directories are made one component at a time with mkdirat(2) under
//     the parent's descriptor, never through a path the kernel resolves
//     again from the host's "/".
//  2. Mount onto what was resolved, not onto a name. The result is a
//     file descriptor; mount(2) is given /proc/self/fd/N, a "magic link"
//     to exactly that directory, so no rename or symlink swap between the
//     check and the mount can change the target. This is runc's fix.

// MountAll bind-mounts each mount's source into the container root root.
// It must run in the container's init, in its own mount namespace with
// private propagation, after the overlay is mounted at root (the merged
// directory) and before pivot_root(2): it needs the host's paths for the
// sources and the host's /proc for the descriptors' magic links.
//
// resolve maps a mount to its host source: Store.Resolve, or a function
// of the caller's. A directory source needs a directory destination and a
// file source a file; missing ones are created inside root. Mounts go in
// order of depth, parents first, so -v a:/x/y -v b:/x still shows a at
// /x/y. Each mount is recursive (MS_REC) and private, and :ro makes it
// read-only.
func MountAll(root string, mounts []Mount,
	resolve func(Mount) (string, error)) error {
	if len(mounts) == 0 {
		return nil
	}
	sorted, err := sortMounts(mounts)
	if err != nil {
		return err
	}
	if err := checkProc(); err != nil {
		return err
	}
	rootFd, err := unix.Open(root,
		unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("mount volumes: open root %s: %w", root, err)
	}
	defer unix.Close(rootFd)
	for _, m := range sorted {
		source, err := resolve(m)
		if err != nil {
			return fmt.Errorf("mount %s: %w", m, err)
		}
		if err := mountOne(rootFd, source, m); err != nil {
			return fmt.Errorf("mount %s: %w", m, err)
		}
	}
	return nil
}

// sortMounts checks the destinations and orders them parents first.
func sortMounts(mounts []Mount) ([]Mount, error) {
	seen := map[string]bool{}
	sorted := make([]Mount, 0, len(mounts))
	for _, m := range mounts {
		dst := filepath.Clean(m.Destination)
		if !filepath.IsAbs(dst) || dst == "/" {
			return nil, fmt.Errorf("%w: mount %s: destination must be an "+
				"absolute path other than /", ErrInvalid, m)
		}
		if seen[dst] {
			return nil, fmt.Errorf("%w: two mounts on %s", ErrInvalid, dst)
		}
		seen[dst] = true
		m.Destination = dst
		sorted = append(sorted, m)
	}
	depth := func(p string) int { return strings.Count(p, "/") }
	sort.SliceStable(sorted, func(i, j int) bool {
		return depth(sorted[i].Destination) < depth(sorted[j].Destination)
	})
	return sorted, nil
}

// checkProc makes sure /proc is a real procfs: the magic links below are
// only as trustworthy as the file system that provides them.
func checkProc() error {
	var fs unix.Statfs_t
	if err := unix.Statfs("/proc/self/fd", &fs); err != nil {
		return fmt.Errorf("mount volumes: /proc: %w", err)
	}
	if fs.Type != unix.PROC_SUPER_MAGIC {
		return fmt.Errorf("mount volumes: /proc is not procfs (type %#x)",
			fs.Type)
	}
	return nil
}

// mountOne makes one bind mount from the host path source onto
// m.Destination inside the root rootFd.
func mountOne(rootFd int, source string, m Mount) error {
	// The source is a host path the user chose (or the store's own
	// directory), so following its symlinks is what they asked for. It
	// too is held by a descriptor, so what is checked is what is mounted.
	src, err := unix.Open(source, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open source %s: %w", source, err)
	}
	defer unix.Close(src)
	var srcSt unix.Stat_t
	if err := unix.Fstat(src, &srcSt); err != nil {
		return fmt.Errorf("stat source %s: %w", source, err)
	}
	isDir := srcSt.Mode&unix.S_IFMT == unix.S_IFDIR

	dst, err := mkdirInRoot(rootFd, m.Destination, isDir)
	if err != nil {
		return err
	}
	defer unix.Close(dst)
	// A symlink to "/" or "../../.." resolves to the root itself. A
	// volume there would replace the whole image, which -v / may not do
	// either.
	if same, err := sameFile(dst, rootFd); err != nil || same {
		if err == nil {
			err = fmt.Errorf("%w: %s resolves to the container's root",
				ErrInvalid, m.Destination)
		}
		return err
	}

	// Equivalent to: mount --rbind SOURCE ROOT/DEST, with both given as
	// the descriptors' magic links.
	err = mountFd(src, dst, unix.MS_BIND|unix.MS_REC, "bind")
	if err != nil {
		return err
	}

	// dst still names the directory under the new mount, so open the
	// destination again: it now resolves to the mount's root, which must
	// be the source itself. That check catches any change in between.
	top, err := openInRoot(rootFd, m.Destination, unix.O_PATH)
	if err != nil {
		return fmt.Errorf("reopen %s: %w", m.Destination, err)
	}
	defer unix.Close(top)
	if same, err := sameFile(top, src); err != nil || !same {
		if err == nil {
			err = fmt.Errorf("%s does not show %s after mounting it: "+
				"the path changed meanwhile", m.Destination, source)
		}
		return err
	}

	// No mount or unmount made later under it, in the container or on
	// the host, crosses to the other side: Docker's default "rprivate".
	// mount_namespaces(7)
	err = mountFd(-1, top, unix.MS_PRIVATE|unix.MS_REC, "make private")
	if err != nil {
		return err
	}
	if !m.ReadOnly {
		return nil
	}
	return remountReadOnly(top)
}

// remountReadOnly makes the bind mount at fd read-only. A bind mount
// takes the flags of the mount it was made from, and MS_RDONLY with
// MS_BIND is ignored on the first mount(2): changing them needs a
// remount. The remount replaces all the per-mount flags, so nosuid,
// nodev, noexec and the atime flags the source had are kept; the kernel
// refuses to drop some of them (EPERM) when they are locked. Only the top
// mount becomes read-only, not mounts below the source (as with Docker's
// plain :ro).
func remountReadOnly(fd int) error {
	var fs unix.Statfs_t
	if err := unix.Fstatfs(fd, &fs); err != nil {
		return fmt.Errorf("statfs: %w", err)
	}
	flags := uintptr(unix.MS_REMOUNT | unix.MS_BIND | unix.MS_RDONLY)
	keep := []struct{ st, ms uintptr }{
		{unix.ST_NOSUID, unix.MS_NOSUID},
		{unix.ST_NODEV, unix.MS_NODEV},
		{unix.ST_NOEXEC, unix.MS_NOEXEC},
		{unix.ST_NOATIME, unix.MS_NOATIME},
		{unix.ST_NODIRATIME, unix.MS_NODIRATIME},
		{unix.ST_RELATIME, unix.MS_RELATIME},
	}
	for _, k := range keep {
		if uintptr(fs.Flags)&k.st != 0 {
			flags |= k.ms
		}
	}
	// Equivalent to: mount -o remount,bind,ro ROOT/DEST
	return mountFd(-1, fd, flags, "remount read-only")
}

// mountFd is mount(2) from the descriptor src (none if -1) onto the
// descriptor dst, through their /proc/self/fd magic links.
func mountFd(src, dst int, flags uintptr, what string) error {
	source := ""
	if src >= 0 {
		source = fdPath(src)
	}
	if err := unix.Mount(source, fdPath(dst), "", flags, ""); err != nil {
		return fmt.Errorf("%s: mount(2): %w", what, err)
	}
	return nil
}

// fdPath is the magic link to an open descriptor of this process.
func fdPath(fd int) string { return "/proc/self/fd/" + strconv.Itoa(fd) }

// resolveFlags confine a path to the root: see the top of this file.
const resolveFlags = unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS

// openInRoot opens path as if rootFd were "/". openat2(2)
func openInRoot(rootFd int, path string, flags int) (int, error) {
	how := unix.OpenHow{
		Flags:   uint64(flags | unix.O_CLOEXEC),
		Resolve: resolveFlags,
	}
	for tries := 0; ; tries++ {
		fd, err := unix.Openat2(rootFd, path, &how)
		switch {
		// EAGAIN: something was renamed during the walk, so the
		// kernel cannot vouch that ".." stayed inside; just try again.
		case errors.Is(err, unix.EAGAIN) && tries < 16:
			continue
		case errors.Is(err, unix.ENOSYS):
			return -1, fmt.Errorf("openat2(2) %s: %w (Linux 5.6 or "+
				"later is needed to mount volumes safely)", path, err)
		case err != nil:
			return -1, fmt.Errorf("openat2(2) %s: %w", path, err)
		}
		return fd, nil
	}
}

// mkdirInRoot opens the destination path inside rootFd as an O_PATH
// descriptor, first making the directories it lacks (mode 0755) and, for
// a file source (isDir false), an empty file (0644) as its last
// component. Each component is resolved from the root again, so a
// symlink anywhere on the way is followed inside the root; each missing
// one is made with mkdirat(2) in its parent's descriptor. A component
// that is a dangling symlink is an error: its target would be made
// somewhere the image chose.
func mkdirInRoot(rootFd int, path string, isDir bool) (int, error) {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	parent, err := unix.Dup(rootFd)
	if err != nil {
		return -1, fmt.Errorf("dup: %w", err)
	}
	for i, name := range parts {
		last := i == len(parts)-1
		prefix := "/" + strings.Join(parts[:i+1], "/")
		fd, err := openInRoot(rootFd, prefix, unix.O_PATH)
		if errors.Is(err, unix.ENOENT) {
			err = create(parent, name, last && !isDir)
			if errors.Is(err, unix.EEXIST) {
				err = fmt.Errorf("%s is a dangling symlink or was made "+
					"as we looked: %w", prefix, err)
			}
			if err == nil {
				fd, err = openInRoot(rootFd, prefix, unix.O_PATH)
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
		if wantDir := isDir || !last; dir != wantDir {
			unix.Close(fd)
			if wantDir {
				return -1, fmt.Errorf("%s in the container: %w",
					prefix, unix.ENOTDIR)
			}
			return -1, fmt.Errorf("%s in the container, for a file "+
				"source: %w", prefix, unix.EISDIR)
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

// sameFile tells whether two descriptors are the same file.
func sameFile(a, b int) (bool, error) {
	var sa, sb unix.Stat_t
	if err := unix.Fstat(a, &sa); err != nil {
		return false, fmt.Errorf("stat: %w", err)
	}
	if err := unix.Fstat(b, &sb); err != nil {
		return false, fmt.Errorf("stat: %w", err)
	}
	return sa.Dev == sb.Dev && sa.Ino == sb.Ino, nil
}

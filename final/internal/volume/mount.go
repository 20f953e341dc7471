package volume

import (
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/gocell/gocell/final/internal/inroot"
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
// The defence has two halves:
//
//  1. Resolve inside the root (package inroot). openat2(2) with RESOLVE_IN_ROOT walks the
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

	dst, err := inroot.Mkdir(rootFd, m.Destination, !isDir, inroot.Follow)
	if err != nil {
		return err
	}
	defer unix.Close(dst)
	// A symlink to "/" or "../../.." resolves to the root itself. A
	// volume there would replace the whole image, which -v / may not do
	// either.
	if same, err := inroot.SameFile(dst, rootFd); err != nil || same {
		if err == nil {
			err = fmt.Errorf("%w: %s resolves to the container's root",
				ErrInvalid, m.Destination)
		}
		return err
	}

	if err := notKernelFS(dst, m.Destination); err != nil {
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
	top, err := inroot.Open(rootFd, m.Destination, unix.O_PATH, inroot.Follow)
	if err != nil {
		return fmt.Errorf("reopen %s: %w", m.Destination, err)
	}
	defer unix.Close(top)
	if same, err := inroot.SameFile(top, src); err != nil || !same {
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

// notKernelFS refuses a destination in the container's /proc or /sys,
// reached directly or through a symlink in the image (/data ->
// /proc/sys): a mount there could cover the masks that keep the kernel's
// settings read-only, as runc's checkProcMount refuses too, and a seed
// from there would copy the kernel's files into a volume. fstatfs(2)
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

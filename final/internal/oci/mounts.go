package oci

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/gocell/gocell/final/internal/inroot"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// mountOpts is what a mount's options ask for, split as mount(2) wants
// them: flags for the mount itself, propagation flags for a second call,
// and the rest as file system data ("mode=755,size=65536k").
type mountOpts struct {
	flags uintptr
	prop  []uintptr
	data  []string
	bind  bool
	rec   bool
}

// mountFlags are the options that are mount(2) flags: set, or cleared.
// mount(8) has the names.
var mountFlags = map[string]struct {
	clear bool
	flag  uintptr
}{
	"ro": {false, unix.MS_RDONLY}, "rw": {true, unix.MS_RDONLY},
	"nosuid": {false, unix.MS_NOSUID}, "suid": {true, unix.MS_NOSUID},
	"nodev": {false, unix.MS_NODEV}, "dev": {true, unix.MS_NODEV},
	"noexec": {false, unix.MS_NOEXEC}, "exec": {true, unix.MS_NOEXEC},
	"sync": {false, unix.MS_SYNCHRONOUS}, "async": {true, unix.MS_SYNCHRONOUS},
	"dirsync": {false, unix.MS_DIRSYNC}, "mand": {false, unix.MS_MANDLOCK},
	"nomand": {true, unix.MS_MANDLOCK}, "noatime": {false, unix.MS_NOATIME},
	"atime": {true, unix.MS_NOATIME}, "nodiratime": {false, unix.MS_NODIRATIME},
	"diratime": {true, unix.MS_NODIRATIME}, "relatime": {false, unix.MS_RELATIME},
	"norelatime": {true, unix.MS_RELATIME}, "strictatime": {false, unix.MS_STRICTATIME},
	"nostrictatime": {true, unix.MS_STRICTATIME}, "lazytime": {false, unix.MS_LAZYTIME},
	"nolazytime": {true, unix.MS_LAZYTIME}, "defaults": {false, 0},
}

// propagations are the propagation options. mount_namespaces(7)
var propagations = map[string]uintptr{
	"private": unix.MS_PRIVATE, "rprivate": unix.MS_PRIVATE | unix.MS_REC,
	"shared": unix.MS_SHARED, "rshared": unix.MS_SHARED | unix.MS_REC,
	"slave": unix.MS_SLAVE, "rslave": unix.MS_SLAVE | unix.MS_REC,
	"unbindable": unix.MS_UNBINDABLE, "runbindable": unix.MS_UNBINDABLE | unix.MS_REC,
}

// mountOptions parses a mount's options. The few it cannot honour are
// refused by name.
func mountOptions(opts []string) (mountOpts, error) {
	var m mountOpts
	for _, o := range opts {
		switch {
		case o == "bind":
			m.bind = true
		case o == "rbind":
			m.bind, m.rec = true, true
		case propagations[o] != 0:
			m.prop = append(m.prop, propagations[o])
		case o == "tmpcopyup" || o == "idmap" || o == "ridmap" || o == "copy-symlink" ||
			strings.HasPrefix(o, "x-"):
			return m, fmt.Errorf("%w: mount option %q", ErrUnsupported, o)
		default:
			if f, ok := mountFlags[o]; ok {
				if f.clear {
					m.flags &^= f.flag
				} else {
					m.flags |= f.flag
				}
				continue
			}
			m.data = append(m.data, o)
		}
	}
	return m, nil
}

// Why mounting needs care: the symlink race of CVE-2021-30465.
//
// A mount's destination (a volume's, say) is a path inside the
// container's root, and that root is an image: anyone may have built it.
// The obvious code,
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
//  1. Resolve inside the root (package inroot). openat2(2) with
//     RESOLVE_IN_ROOT walks the path as if root were "/" — an absolute
//     symlink starts again at root,
//     and ".." stops at it — so /data -> /etc opens root/etc and
//     ../../../.. opens root itself. RESOLVE_NO_MAGICLINKS refuses the
//     /proc/PID/fd/N kind of link, which could jump anywhere. Missing
//     directories are made one component at a time with mkdirat(2) under
//     the parent's descriptor, never through a path the kernel resolves
//     again from the host's "/".
//  2. Mount onto what was resolved, not onto a name. The result is a
//     file descriptor; mount(2) is given /proc/self/fd/N, a "magic link"
//     to exactly that directory, and move_mount(2) the descriptor itself,
//     so no rename or symlink swap between the check and the mount can
//     change the target. This is runc's fix.

// mountAll makes the spec's mounts inside root, in order, before
// pivot_root: each destination is resolved in the root without leaving it
// (package inroot), made if missing, and mounted on through its
// descriptor (/proc/self/fd/N), so a symlink in the image cannot aim a
// mount at the host. Bind sources are host paths, relative ones to the
// bundle (the working directory).
func mountAll(root string, s *specs.Spec, cgroupDirs map[string]string, sources map[int]int) error {
	rootFd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open root %s: %w", root, err)
	}
	defer unix.Close(rootFd)
	for i, m := range s.Mounts {
		source, ok := sources[i]
		if !ok {
			source = -1
		}
		err := mountOne(rootFd, m, s, cgroupDirs, source)
		if ok {
			unix.Close(source)
		}
		if err != nil {
			return fmt.Errorf("mount %s on %s: %w", m.Type, m.Destination, err)
		}
	}
	return nil
}

// isBind says whether m is a bind mount.
func isBind(m specs.Mount) bool {
	if m.Type == "bind" {
		return true
	}
	o, err := mountOptions(m.Options)
	return err == nil && o.bind
}

// bindSources opens the source of every bind mount, from the host's side,
// before the container's process exists: a detached copy of the source's
// mount (open_tree(2) OPEN_TREE_CLONE, AT_RECURSIVE for rbind), which the
// process attaches at its destination with move_mount(2). In a user
// namespace, the container's root could not even look up a source below
// a directory that only the host's root may search (gocell's own store
// is 0700); and a source is never looked up again, by its path, once
// the container's namespaces exist. Relative sources are the bundle's.
// The result has one file for each mount of the spec, nil but for binds.
func bindSources(s *specs.Spec, bundle string) ([]*os.File, error) {
	out := make([]*os.File, len(s.Mounts))
	fail := func(err error) ([]*os.File, error) {
		for _, f := range out {
			if f != nil {
				f.Close()
			}
		}
		return nil, err
	}
	for i, m := range s.Mounts {
		if !isBind(m) {
			continue
		}
		o, _ := mountOptions(m.Options)
		source := m.Source
		if !filepath.IsAbs(source) {
			source = filepath.Join(bundle, source)
		}
		flags := uint(unix.OPEN_TREE_CLONE | unix.OPEN_TREE_CLOEXEC)
		if o.rec {
			flags |= unix.AT_RECURSIVE
		}
		// Equivalent to: mount --bind SOURCE, attached nowhere yet.
		fd, err := unix.OpenTree(unix.AT_FDCWD, source, flags)
		if err != nil {
			return fail(fmt.Errorf("mount %s: source %s: %w", m.Destination, m.Source, err))
		}
		out[i] = os.NewFile(uintptr(fd), "mount-source")
		// A copy of a shared mount is shared with it: a mount the
		// container's process then makes below the destination (its
		// /dev/mqueue in a /dev the config binds) would appear in the
		// host's directory too. A slave receives the host's mounts and
		// sends none, as a bind made after "/" became rslave would.
		// mount_setattr(2), mount_namespaces(7)
		setflags := uint(unix.AT_EMPTY_PATH)
		if o.rec {
			setflags |= unix.AT_RECURSIVE
		}
		if err := unix.MountSetattr(fd, "", setflags, &unix.MountAttr{Propagation: unix.MS_SLAVE}); err != nil {
			return fail(fmt.Errorf("mount %s: propagation of the copy of %s: %w", m.Destination, m.Source, err))
		}
	}
	return out, nil
}

func mountOne(rootFd int, m specs.Mount, s *specs.Spec, cgroupDirs map[string]string, source int) error {
	o, err := mountOptions(m.Options)
	if err != nil {
		return err
	}
	if m.Type == "bind" {
		o.bind = true
	}
	file := false
	if o.bind {
		var st unix.Stat_t
		if err := unix.Fstat(source, &st); err != nil {
			return fmt.Errorf("source %s: %w", m.Source, err)
		}
		file = st.Mode&unix.S_IFMT != unix.S_IFDIR
	}
	// Under /proc, /sys and /dev, the runtime's own file systems, the
	// image may have no symlink at all; elsewhere symlinks are followed,
	// inside the root, but may not lead there either.
	resolve := uint64(inroot.Follow)
	if runtimeDir(m.Destination) != "" {
		resolve = inroot.NoSymlinks
	}
	fd, err := inroot.Mkdir(rootFd, m.Destination, file, resolve)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	target := fmt.Sprintf("/proc/self/fd/%d", fd)
	if err := checkLanding(rootFd, fd, m.Destination); err != nil {
		return err
	}
	data := strings.Join(o.data, ",")
	switch {
	case o.bind:
		// Equivalent to: mount --bind SOURCE TARGET, from the copy
		// create made (bindSources), then a remount for the flags,
		// which a first bind mount ignores.
		if err := unix.MoveMount(source, "", fd, "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH); err != nil {
			return err
		}
		if o.flags != 0 {
			if err := remount(onTop(target), o.flags); err != nil {
				return err
			}
		}
	case m.Type == "cgroup" || m.Type == "cgroup2":
		cgroupns, path := hasNamespace(s, specs.CgroupNamespace)
		if err := mountCgroup(target, o.flags, cgroupDirs, cgroupns && path == ""); err != nil {
			return err
		}
	default:
		err := unix.Mount(m.Source, target, m.Type, o.flags, data)
		if errors.Is(err, unix.EPERM) && m.Type == "sysfs" {
			// A sysfs shows a network namespace's devices and may be
			// mounted only by its owner: in a user namespace without a
			// network namespace of its own, bind the host's instead, as
			// runc does.
			err = unix.Mount("/sys", target, "", unix.MS_BIND|unix.MS_REC, "")
			if err == nil {
				err = remount(onTop(target), o.flags|unix.MS_RDONLY)
			}
		}
		if err != nil {
			return err
		}
	}
	for _, p := range o.prop {
		if err := unix.Mount("", onTop(target), "", p, ""); err != nil {
			return fmt.Errorf("propagation: %w", err)
		}
	}
	return nil
}

// runtimeDir is "proc", "sys" or "dev" when path is that directory of
// the container or below it: where the runtime mounts its own file
// systems, procfs, sysfs and the /dev tmpfs with its device nodes.
func runtimeDir(path string) string {
	top, _, _ := strings.Cut(strings.TrimPrefix(filepath.Clean("/"+path), "/"), "/")
	switch top {
	case "proc", "sys", "dev":
		return top
	}
	return ""
}

// checkLanding refuses a mount whose destination, through a symlink of
// the image, lands in /proc, /sys or /dev when the config named a path
// elsewhere: a volume at /data, with the image's /data -> /dev, would
// cover the container's /dev, and the volume's files (which another
// container may write) would take the place of /dev/null and the
// others, or a file bound at /etc/hosts -> /proc/self/oom_score_adj
// would receive the runtime's writes. runc's checkProcMount guards the
// same. The landing place is read back from the descriptor.
func checkLanding(rootFd, fd int, dest string) error {
	root, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", rootFd))
	if err != nil {
		return err
	}
	at, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", fd))
	if err != nil {
		return err
	}
	rel, err := filepath.Rel(root, at)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return fmt.Errorf("destination %s resolves to %s, outside the root: refused", dest, at)
	}
	if landed := runtimeDir(rel); landed != "" && landed != runtimeDir(dest) {
		return fmt.Errorf("destination %s leads, through a symlink of the image, to /%s: refused"+
			" (/proc, /sys and /dev are the runtime's)", dest, rel)
	}
	return nil
}

// onTop names what was just mounted on target, a /proc/self/fd/N: the
// descriptor still names the directory under the new mount, so a remount
// through it would change that one; its path, walked again, crosses into
// the new mount. No process of the container exists yet to change that
// path between the two. The path is walked from the working directory,
// the bundle, when it is below it: in a user namespace, the container's
// root may not pass through the directories above the bundle.
func onTop(target string) string {
	path, err := os.Readlink(target)
	if err != nil {
		return target
	}
	if cwd, err := os.Getwd(); err == nil && cwd != "/" {
		if rel, ok := strings.CutPrefix(path, cwd+"/"); ok {
			return rel
		}
	}
	return path
}

// remount applies flags to a bind mount, keeping the flags the kernel
// locked on it (a user namespace may not clear nosuid, nodev, noexec or
// the atime flags of a mount it did not make). statfs(2), mount(2)
func remount(target string, flags uintptr) error {
	var st unix.Statfs_t
	if err := unix.Statfs(target, &st); err != nil {
		return err
	}
	locked := uintptr(st.Flags) & (unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC |
		unix.MS_NOATIME | unix.MS_NODIRATIME | unix.MS_RELATIME | unix.MS_RDONLY)
	return unix.Mount("", target, "", unix.MS_REMOUNT|unix.MS_BIND|flags|locked, "")
}

// mountCgroup gives the container its view of the cgroups: its own
// cgroup, never the host's whole tree. On v2 with a cgroup namespace of
// its own, a cgroup2 file system, which shows from the namespace's root,
// the container's cgroup. Without one, a bind mount of the container's
// cgroup directory: not a new cgroup2 mount, which would show the whole
// tree and, made from the host's cgroup namespace, would also set the
// host's cgroup2 options to its own (nsdelegate and memory_recursiveprot
// off, for every cgroup2 mount of the machine). On v1, a tmpfs holding,
// for each controller tree, a bind mount of the container's own cgroup
// in it, as runc does. cgroup_namespaces(7), admin-guide/cgroup-v2.rst
func mountCgroup(target string, flags uintptr, dirs map[string]string, ownNS bool) error {
	if dir, v2 := dirs[""]; v2 {
		if ownNS {
			return unix.Mount("cgroup2", target, "cgroup2", flags, "")
		}
		if err := unix.Mount(dir, target, "", unix.MS_BIND, ""); err != nil {
			return err
		}
		return remount(onTop(target), flags)
	}
	if err := unix.Mount("tmpfs", target, "tmpfs", flags&^unix.MS_RDONLY, "mode=755"); err != nil {
		return err
	}
	top := onTop(target)
	for controller, dir := range dirs {
		sub := filepath.Join(top, controller)
		if err := os.Mkdir(sub, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return err
		}
		if err := unix.Mount(dir, sub, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return err
		}
		if err := remount(sub, flags); err != nil {
			return err
		}
	}
	if flags&unix.MS_RDONLY != 0 {
		return remount(top, flags)
	}
	return nil
}

// pivot makes root the process's root, with pivot_root(2) and the old
// root stacked on the new one and detached at once (pivot_root(".", ".")),
// so no directory is needed for it, as runc does.
func pivot(root string) error {
	if err := unix.Chdir(root); err != nil {
		return err
	}
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root %s: %w", root, err)
	}
	// The old root may be shared with the host: make it a slave first,
	// so that unmounting it does not propagate there.
	if err := unix.Mount("", ".", "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
		return err
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("umount the old root: %w", err)
	}
	return unix.Chdir("/")
}

// openNull opens the container's /dev/null, after pivot_root, without
// following a symlink, and checks that it is the character device 1:3:
// what hides masked files must be the device itself, not whatever a
// path named /dev/null leads to (runc's CVE-2025-31133). (The host's
// cannot serve: a bind mount's source must be in our mount namespace,
// and the host's /dev left it with the old root.) null(4)
func openNull() (*os.File, error) {
	f, err := os.OpenFile("/dev/null", unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open /dev/null: %w", err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFCHR ||
		unix.Major(st.Rdev) != 1 || unix.Minor(st.Rdev) != 3 {
		f.Close()
		return nil, errors.New("/dev/null is not the character device 1:3")
	}
	return f, nil
}

// maskPaths hides maskedPaths: a directory behind an empty read-only
// tmpfs, anything else behind null, the container's /dev/null as
// openNull checked it. A path that does not exist is hidden already; any other
// failure stops the container.
func maskPaths(paths []string, null *os.File) error {
	for _, p := range paths {
		st, err := os.Lstat(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("mask %s: %w", p, err)
		}
		if st.IsDir() {
			err = unix.Mount("tmpfs", p, "tmpfs", unix.MS_RDONLY, "")
		} else {
			err = unix.Mount(fmt.Sprintf("/proc/self/fd/%d", null.Fd()), p, "", unix.MS_BIND, "")
		}
		if err != nil {
			return fmt.Errorf("mask %s: %w", p, err)
		}
	}
	return nil
}

// readonlyPaths makes paths read-only bind mounts of themselves.
func readonlyPaths(paths []string) error {
	for _, p := range paths {
		err := unix.Mount(p, p, "", unix.MS_BIND|unix.MS_REC, "")
		if errors.Is(err, unix.ENOENT) {
			continue
		}
		if err == nil {
			err = remount(p, unix.MS_RDONLY)
		}
		if err != nil {
			return fmt.Errorf("read-only %s: %w", p, err)
		}
	}
	return nil
}

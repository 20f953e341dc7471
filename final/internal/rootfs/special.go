package rootfs

import (
	"errors"
	"fmt"
	"strings"

	"github.com/gocell/gocell/final/internal/inroot"
	"golang.org/x/sys/unix"
)

// The kernel's own file systems, mounted by descriptor.
//
// mount(2) takes a target by name, and the kernel resolves that name when
// it mounts, following whatever symlinks it meets. The new mount API
// (Linux 5.2) splits the same work into steps that take descriptors:
//
//	fsopen("proc")          a file system context, to configure
//	fsconfig(...)           its options, one by one ("mode", "755")
//	fsmount(...)            a mount of it, attached nowhere yet, with its
//	                        flags (read-only, nosuid, nodev, noexec)
//	move_mount(m, target)   attached on the directory target, a descriptor
//
// and open_tree(2) makes a detached copy of an existing mount, as
// mount --bind does. The target was resolved once, safely, inside the
// root (package inroot); nothing can change what it is afterwards.

// specialMounts are the descriptors of the mounts that the masks go into.
type specialMounts struct {
	proc, sys int
}

func (s *specialMounts) close() {
	unix.Close(s.proc)
	unix.Close(s.sys)
}

// mountSpecial mounts, inside root: /proc, a minimal /dev (device nodes
// bound from the host's, /dev/pts, /dev/shm, /dev/mqueue and the usual
// links), and a read-only /sys. Each mount point must be a directory of
// the image or missing, never a symlink.
func mountSpecial(root int) (*specialMounts, error) {
	noexec := uint(unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV | unix.MOUNT_ATTR_NOEXEC)
	// A procfs for our PID namespace: fsopen(2) takes the PID namespace
	// of the process that calls it, and we are its process 1.
	// Equivalent to: mount -t proc -o nosuid,nodev,noexec proc /proc
	proc, err := mountNew(root, "/proc", "proc", nil, noexec, unix.PROC_SUPER_MAGIC)
	if err != nil {
		return nil, err
	}
	// Equivalent to: mount -t tmpfs -o nosuid,mode=755,size=65536k tmpfs /dev
	dev, err := mountNew(root, "/dev", "tmpfs", []string{"mode", "755", "size", "65536k"},
		unix.MOUNT_ATTR_NOSUID, unix.TMPFS_MAGIC)
	if err != nil {
		unix.Close(proc)
		return nil, err
	}
	err = fillDev(dev)
	unix.Close(dev)
	if err != nil {
		unix.Close(proc)
		return nil, err
	}
	// sysfs shows the network devices of our network namespace.
	// Equivalent to: mount -t sysfs -o ro,nosuid,nodev,noexec sysfs /sys
	sys, err := mountNew(root, "/sys", "sysfs", nil, noexec|unix.MOUNT_ATTR_RDONLY, unix.SYSFS_MAGIC)
	if err != nil {
		unix.Close(proc)
		return nil, err
	}
	return &specialMounts{proc: proc, sys: sys}, nil
}

// fillDev fills the new /dev, dev: device nodes, links and mounts. It is
// a tmpfs we just made, so its entries are ours, made by name.
func fillDev(dev int) error {
	for _, name := range devices {
		// An empty file to mount on, then the host's node on it.
		// Equivalent to: touch /dev/null && mount --bind /dev/null /dev/null
		fd, err := unix.Openat(dev, name, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|
			unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o666)
		if err != nil {
			return fmt.Errorf("create /dev/%s: %w", name, err)
		}
		unix.Close(fd)
		if err := bindHost("/dev/"+name, dev, name); err != nil {
			return err
		}
	}
	links := map[string]string{"ptmx": "pts/ptmx", "fd": "/proc/self/fd",
		"stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1",
		"stderr": "/proc/self/fd/2"}
	for link, target := range links {
		if err := unix.Symlinkat(target, dev, link); err != nil {
			return fmt.Errorf("symlink /dev/%s: %w", link, err)
		}
	}
	noexec := uint(unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV | unix.MOUNT_ATTR_NOEXEC)
	subs := []struct {
		name, fstype string
		opts         []string
		attr         uint
		magic        int64
		mode         uint32
	}{
		// Since Linux 4.7 every devpts mount is a new instance: its
		// ptys are not the host's.
		{"pts", "devpts", []string{"ptmxmode", "0666", "mode", "620"},
			unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NOEXEC, unix.DEVPTS_SUPER_MAGIC, 0o755},
		{"shm", "tmpfs", []string{"mode", "1777", "size", "65536k"}, noexec, unix.TMPFS_MAGIC, 0o1777},
		// The message queues of our IPC namespace.
		{"mqueue", "mqueue", nil, noexec, mqueueMagic, 0o755},
	}
	for _, s := range subs {
		if err := unix.Mkdirat(dev, s.name, s.mode); err != nil {
			return fmt.Errorf("mkdir /dev/%s: %w", s.name, err)
		}
		fd, err := mountNew(dev, s.name, s.fstype, s.opts, s.attr, s.magic)
		if err != nil {
			return fmt.Errorf("/dev/%s: %w", s.name, err)
		}
		unix.Close(fd)
	}
	return nil
}

// mountNew makes a new file system of type fstype with the options opts
// (key, value, key, value…) and the mount attributes attr, and attaches
// it on the directory path inside dir, made if missing. path may not
// pass through a symlink. It returns a descriptor of the new mount's
// root, checked to be of type magic.
func mountNew(dir int, path, fstype string, opts []string, attr uint, magic int64) (int, error) {
	target, err := inroot.Mkdir(dir, path, false, inroot.NoSymlinks)
	if err != nil {
		return -1, fmt.Errorf("mount %s on %s: %w", fstype, path, err)
	}
	defer unix.Close(target)
	fsfd, err := unix.Fsopen(fstype, unix.FSOPEN_CLOEXEC)
	if err != nil {
		return -1, fmt.Errorf("fsopen(2) %s: %w", fstype, err)
	}
	defer unix.Close(fsfd)
	// The "source" mountinfo shows, as mount -t TYPE TYPE … gives it.
	opts = append([]string{"source", fstype}, opts...)
	for i := 0; i+1 < len(opts); i += 2 {
		if err := unix.FsconfigSetString(fsfd, opts[i], opts[i+1]); err != nil {
			return -1, fmt.Errorf("fsconfig(2) %s %s=%s: %w", fstype, opts[i], opts[i+1], err)
		}
	}
	if err := unix.FsconfigCreate(fsfd); err != nil {
		return -1, fmt.Errorf("fsconfig(2) %s create: %w", fstype, err)
	}
	m, err := unix.Fsmount(fsfd, unix.FSMOUNT_CLOEXEC, int(attr))
	if err != nil {
		return -1, fmt.Errorf("fsmount(2) %s: %w", fstype, err)
	}
	if err := attach(m, target, path); err != nil {
		unix.Close(m)
		return -1, err
	}
	// What we mounted is what we meant: a process cannot forge the type
	// of a mount it did not make. fstatfs(2)
	if got, err := inroot.FSType(m); err != nil || got != magic {
		unix.Close(m)
		return -1, fmt.Errorf("%s on %s: file system type %#x, not %s (%v)",
			fstype, path, got, fstype, err)
	}
	return m, nil
}

// attach moves the detached mount m onto the directory or file target.
func attach(m, target int, what string) error {
	err := unix.MoveMount(m, "", target, "",
		unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH)
	if err != nil {
		return fmt.Errorf("move_mount(2) onto %s: %w", what, err)
	}
	return nil
}

// bindHost bind-mounts the host path source (a path we trust, before
// pivot_root) onto the entry name of the directory dir.
func bindHost(source string, dir int, name string) error {
	m, err := unix.OpenTree(unix.AT_FDCWD, source, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err != nil {
		return fmt.Errorf("open_tree(2) %s: %w", source, err)
	}
	defer unix.Close(m)
	err = unix.MoveMount(m, "", dir, name, unix.MOVE_MOUNT_F_EMPTY_PATH)
	if err != nil {
		return fmt.Errorf("move_mount(2) %s onto %s: %w", source, name, err)
	}
	return nil
}

// mask hides maskedPaths and makes readonlyPaths read-only. Each path is
// resolved below the procfs or sysfs we mounted, through no symlink and
// no other mount: we know those file systems are the kernel's, so a path
// missing there is one this kernel does not have, and is skipped as
// Docker skips it. Any other failure stops the container.
func mask(s *specialMounts) error {
	for _, p := range maskedPaths {
		fd, err := openSpecial(s, p)
		if errors.Is(err, unix.ENOENT) {
			continue
		}
		if err != nil {
			return fmt.Errorf("mask %s: %w", p, err)
		}
		err = maskOne(fd, p)
		unix.Close(fd)
		if err != nil {
			return fmt.Errorf("mask %s: %w", p, err)
		}
	}
	for _, p := range readonlyPaths {
		fd, err := openSpecial(s, p)
		if errors.Is(err, unix.ENOENT) {
			continue
		}
		if err != nil {
			return fmt.Errorf("make %s read-only: %w", p, err)
		}
		err = readOnly(fd, p)
		unix.Close(fd)
		if err != nil {
			return fmt.Errorf("make %s read-only: %w", p, err)
		}
	}
	return nil
}

// openSpecial opens the path p, which starts with /proc/ or /sys/, below
// the matching mount of s.
func openSpecial(s *specialMounts, p string) (int, error) {
	dir, rel := s.proc, strings.TrimPrefix(p, "/proc/")
	if strings.HasPrefix(p, "/sys/") {
		dir, rel = s.sys, strings.TrimPrefix(p, "/sys/")
	}
	return inroot.Open(dir, rel, unix.O_PATH|unix.O_NOFOLLOW, inroot.Beneath)
}

// maskOne hides the file or directory fd: a directory behind an empty
// read-only tmpfs, anything else behind the host's /dev/null.
func maskOne(fd int, p string) error {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("stat: %w", err)
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		// Equivalent to: mount -t tmpfs -o ro,size=0 tmpfs PATH
		fsfd, err := unix.Fsopen("tmpfs", unix.FSOPEN_CLOEXEC)
		if err != nil {
			return fmt.Errorf("fsopen(2) tmpfs: %w", err)
		}
		defer unix.Close(fsfd)
		for _, kv := range [][2]string{{"source", "tmpfs"}, {"size", "0"}} {
			if err := unix.FsconfigSetString(fsfd, kv[0], kv[1]); err != nil {
				return fmt.Errorf("fsconfig(2) %s=%s: %w", kv[0], kv[1], err)
			}
		}
		if err := unix.FsconfigCreate(fsfd); err != nil {
			return fmt.Errorf("fsconfig(2) create: %w", err)
		}
		m, err := unix.Fsmount(fsfd, unix.FSMOUNT_CLOEXEC, unix.MOUNT_ATTR_RDONLY|
			unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV|unix.MOUNT_ATTR_NOEXEC)
		if err != nil {
			return fmt.Errorf("fsmount(2): %w", err)
		}
		defer unix.Close(m)
		return attach(m, fd, p)
	}
	// Equivalent to: mount --bind /dev/null PATH
	m, err := unix.OpenTree(unix.AT_FDCWD, "/dev/null", unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err != nil {
		return fmt.Errorf("open_tree(2) /dev/null: %w", err)
	}
	defer unix.Close(m)
	return attach(m, fd, p)
}

// readOnly puts a read-only copy of the tree at fd on top of itself.
// Equivalent to: mount --rbind PATH PATH && mount -o remount,bind,ro PATH
// (mount_setattr(2) changes the flags of the detached copy, and of every
// mount below it, before it is attached).
func readOnly(fd int, p string) error {
	m, err := unix.OpenTree(fd, "", unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|
		unix.AT_EMPTY_PATH|unix.AT_RECURSIVE)
	if err != nil {
		return fmt.Errorf("open_tree(2): %w", err)
	}
	defer unix.Close(m)
	err = unix.MountSetattr(m, "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE,
		&unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID |
			unix.MOUNT_ATTR_NODEV | unix.MOUNT_ATTR_NOEXEC})
	if err != nil {
		return fmt.Errorf("mount_setattr(2): %w", err)
	}
	return attach(m, fd, p)
}

// pivot makes root the root directory and lets go of the host's.
// pivot_root(".", ".") stacks the old root on top of the new one, where
// umount2(2) with MNT_DETACH takes it away: no directory for the old
// root is needed, so none is ever left in the container's upper layer.
// pivot_root(2), "NOTES"
func pivot(root int) error {
	if err := unix.Fchdir(root); err != nil {
		return fmt.Errorf("chdir to the new root: %w", err)
	}
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root(2): %w", err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("umount the old root: %w", err)
	}
	// Equivalent to: cd /
	if err := unix.Chdir("/"); err != nil {
		return fmt.Errorf("chdir /: %w", err)
	}
	return nil
}

// mqueueMagic is MQUEUE_MAGIC of <linux/magic.h>, which x/sys/unix lacks.
const mqueueMagic = 0x19800202

// Package rootfs builds a container's root file system from inside its
// new mount namespace: the overlay of the image's layers and the
// container's writable layer, pivot_root(2) into it, a fresh /proc, a
// minimal /dev, a read-only /sys, /dev/mqueue, and the paths of /proc and
// /sys that a container must not see or change masked. It is what steps
// 03, 04 and 08 teach, in one place.
//
// Setup must run in the container's init, after clone(2) with
// CLONE_NEWNS and CLONE_NEWPID, as root of the initial user namespace.
package rootfs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Options say what to build.
type Options struct {
	// Layers are the read-only lower directories, top first.
	Layers []string
	// Upper, Work and Merged are the container's overlay directories.
	Upper, Work, Merged string
	// BeforePivot, if set, runs once the overlay is mounted at Merged and
	// while the host's paths are still reachable: volumes are mounted then.
	BeforePivot func(merged string) error
	// UsernsFD, if not 0, is a user namespace (an open /proc/PID/ns/user)
	// whose id map the layers are seen through: each is mounted
	// idmapped at a directory of its own under IDMapped, and the
	// overlay is made of those. Then files that the host's root owns in
	// a layer belong to the namespace's root. mount_setattr(2)
	UsernsFD int
	IDMapped string
}

// devices are borrowed from the host with bind mounts.
var devices = []string{"null", "zero", "full", "random", "urandom", "tty"}

// maskedFiles are hidden behind /dev/null: they leak the host's memory
// (kcore), keys or scheduler internals. The list is the one runc and
// Docker use.
var maskedFiles = []string{"/proc/kcore", "/proc/keys", "/proc/latency_stats",
	"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug"}

// maskedDirs are hidden behind an empty read-only tmpfs.
var maskedDirs = []string{"/proc/acpi", "/proc/scsi", "/sys/firmware",
	"/sys/devices/virtual/powercap"}

// readonlyPaths stay visible but cannot be written: through them a
// container could change the host's kernel settings.
var readonlyPaths = []string{"/proc/bus", "/proc/fs", "/proc/irq",
	"/proc/sys", "/proc/sysrq-trigger"}

// Setup builds the root file system and makes it the process's root.
func Setup(o Options) error {
	if len(o.Layers) == 0 {
		return errors.New("rootfs: no image layers")
	}
	// Nothing we mount may propagate to the host. mount_namespaces(7)
	if err := mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return err
	}
	layers := o.Layers
	if o.UsernsFD != 0 {
		var err error
		if layers, err = idmapLayers(o.Layers, o.IDMapped, o.UsernsFD); err != nil {
			return err
		}
	}
	// The overlay, mounted by root: overlayfs keeps its bookkeeping in
	// trusted.overlay.* xattrs, as the image store wrote them.
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s",
		strings.Join(layers, ":"), o.Upper, o.Work)
	if err := mount("overlay", o.Merged, "overlay", 0, opts); err != nil {
		return err
	}
	if o.BeforePivot != nil {
		if err := o.BeforePivot(o.Merged); err != nil {
			return err
		}
	}
	old, err := pivot(o.Merged)
	if err != nil {
		return err
	}
	if err := mountSpecial(old); err != nil {
		return err
	}
	if err := mask(); err != nil {
		return err
	}
	// Let go of the host's root. umount(2)
	if err := unix.Unmount(old, unix.MNT_DETACH); err != nil {
		return fmt.Errorf("umount %s: %w", old, err)
	}
	if err := os.Remove(old); err != nil {
		return fmt.Errorf("rmdir %s: %w", old, err)
	}
	return nil
}

// idmapLayers mounts each layer again at dir/N, seen through the id map of
// the user namespace usernsFD, and returns those mount points. Each is a
// clone of the layer's mount, made with open_tree(2), given the id map
// with mount_setattr(2) while it is attached nowhere, then attached with
// move_mount(2). The files on disk do not change; this mount namespace,
// the container's, is the only one that sees the new mounts. overlayfs
// takes idmapped layers since Linux 5.19.
func idmapLayers(layers []string, dir string, usernsFD int) ([]string, error) {
	var out []string
	for i, layer := range layers {
		target := filepath.Join(dir, strconv.Itoa(i))
		if err := os.MkdirAll(target, 0o700); err != nil {
			return nil, fmt.Errorf("idmapped layer: %w", err)
		}
		fd, err := unix.OpenTree(unix.AT_FDCWD, layer, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
		if err != nil {
			return nil, fmt.Errorf("open_tree %s: %w", layer, err)
		}
		err = unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH,
			// Read-only too: overlayfs only reads its lower layers.
			&unix.MountAttr{Attr_set: unix.MOUNT_ATTR_IDMAP | unix.MOUNT_ATTR_RDONLY,
				Userns_fd: uint64(usernsFD)})
		if err == nil {
			err = unix.MoveMount(fd, "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH)
		}
		unix.Close(fd)
		if errors.Is(err, unix.EINVAL) {
			return nil, fmt.Errorf("idmapped mount of %s: the file system cannot be "+
				"idmapped (that needs Linux 5.12, and 6.3 on tmpfs), so --userns cannot "+
				"be used with this --root: %w", layer, err)
		}
		if err != nil {
			return nil, fmt.Errorf("idmapped mount of %s: %w", layer, err)
		}
		out = append(out, target)
	}
	return out, nil
}

// pivot makes root the root directory and returns where the old root
// now is. The directory for it lands in the container's upper layer and
// is removed again by Setup. pivot_root(2)
func pivot(root string) (string, error) {
	// pivot_root needs a mount point that is not the current root.
	if err := mount(root, root, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return "", err
	}
	put, err := os.MkdirTemp(root, ".oldroot-")
	if err != nil {
		return "", fmt.Errorf("mkdir in %s: %w", root, err)
	}
	if err := unix.PivotRoot(root, put); err != nil {
		os.Remove(put)
		return "", fmt.Errorf("pivot_root %s: %w", root, err)
	}
	if err := unix.Chdir("/"); err != nil {
		return "", fmt.Errorf("chdir /: %w", err)
	}
	return "/" + filepath.Base(put), nil
}

// mountSpecial mounts /proc, a minimal /dev, /dev/mqueue and a read-only
// /sys, borrowing device nodes from the old root at old.
func mountSpecial(old string) error {
	noexec := uintptr(unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC)
	steps := []struct {
		source, target, fstype string
		flags                  uintptr
		data                   string
		mode                   os.FileMode
	}{
		{"proc", "/proc", "proc", noexec, "", 0o555},
		{"tmpfs", "/dev", "tmpfs", unix.MS_NOSUID, "mode=755,size=65536k", 0o755},
		{"devpts", "/dev/pts", "devpts", unix.MS_NOSUID | unix.MS_NOEXEC,
			"newinstance,ptmxmode=0666,mode=620", 0o755},
		{"shm", "/dev/shm", "tmpfs", noexec, "mode=1777,size=65536k", 0o777},
		{"mqueue", "/dev/mqueue", "mqueue", noexec, "", 0o777},
		{"sysfs", "/sys", "sysfs", noexec | unix.MS_RDONLY, "", 0o555},
	}
	for i, s := range steps {
		if err := os.MkdirAll(s.target, s.mode); err != nil {
			return fmt.Errorf("mkdir %s: %w", s.target, err)
		}
		if err := mount(s.source, s.target, s.fstype, s.flags, s.data); err != nil {
			return err
		}
		if i != 1 {
			continue
		}
		// Right after /dev: the device nodes, and the usual links.
		for _, name := range devices {
			target := "/dev/" + name
			if err := os.WriteFile(target, nil, 0o666); err != nil {
				return fmt.Errorf("create %s: %w", target, err)
			}
			if err := mount(old+target, target, "", unix.MS_BIND, ""); err != nil {
				return err
			}
		}
		links := map[string]string{"/dev/ptmx": "pts/ptmx", "/dev/fd": "/proc/self/fd",
			"/dev/stdin": "/proc/self/fd/0", "/dev/stdout": "/proc/self/fd/1",
			"/dev/stderr": "/proc/self/fd/2"}
		for link, target := range links {
			if err := os.Symlink(target, link); err != nil {
				return fmt.Errorf("symlink %s: %w", link, err)
			}
		}
	}
	return nil
}

// mask hides and write-protects the sensitive paths of /proc and /sys.
func mask() error {
	for _, p := range maskedFiles {
		if err := mount("/dev/null", p, "", unix.MS_BIND, ""); err != nil && !errors.Is(err, unix.ENOENT) {
			return err
		}
	}
	for _, p := range maskedDirs {
		if err := mount("tmpfs", p, "tmpfs", unix.MS_RDONLY, "size=0"); err != nil && !errors.Is(err, unix.ENOENT) {
			return err
		}
	}
	for _, p := range readonlyPaths {
		// A bind mount of the path on itself, then remounted read-only:
		// the flags of a bind mount can only be changed by a remount.
		if err := mount(p, p, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			if errors.Is(err, unix.ENOENT) {
				continue
			}
			return err
		}
		flags := uintptr(unix.MS_BIND | unix.MS_REMOUNT | unix.MS_RDONLY | unix.MS_REC)
		if err := mount(p, p, "", flags, ""); err != nil {
			return err
		}
	}
	return nil
}

// mount is mount(2) with the arguments in its error.
func mount(source, target, fstype string, flags uintptr, data string) error {
	if err := unix.Mount(source, target, fstype, flags, data); err != nil {
		return fmt.Errorf("mount %s on %s (%s): %w", source, target, fstype, err)
	}
	return nil
}

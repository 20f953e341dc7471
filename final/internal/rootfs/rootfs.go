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
	// Seed, if set, runs once the overlay is mounted at Merged, before
	// anything is mounted in it: named volumes are seeded from the image
	// then, when no path of the root leads to the kernel's files yet.
	Seed func(merged string) error
	// BeforePivot, if set, runs once /proc, /dev and /sys are mounted,
	// while the host's paths are still reachable: volumes are mounted
	// then. The masks come after it.
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

// maskedPaths are hidden: a file behind /dev/null, a directory behind an
// empty read-only tmpfs. They leak the host's memory (kcore), keys,
// hardware or scheduler internals. The list is Docker's.
var maskedPaths = []string{"/proc/asound", "/proc/acpi", "/proc/interrupts",
	"/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
	"/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware",
	"/sys/devices/virtual/powercap"}

// readonlyPaths stay visible but cannot be written: through them a
// container could change the host's kernel settings. Docker's list.
var readonlyPaths = []string{"/proc/bus", "/proc/fs", "/proc/irq",
	"/proc/sys", "/proc/sysrq-trigger"}

// Setup builds the root file system and makes it the process's root.
//
// The image decides what every path in it is, so nothing here is mounted
// by a path the kernel would resolve from the host's "/": each mount
// point is resolved inside the root with openat2(2) (package inroot),
// and mounted on through its file descriptor with the new mount API
// (fsopen(2), fsmount(2), open_tree(2), move_mount(2)), which takes
// descriptors where mount(2) takes names. /proc, /sys and /dev may not
// be symlinks at all: an image with /proc -> somewhere is refused rather
// than given a procfs where it chose. And whatever cannot be masked
// stops the container: a missing mask is a hole, not a detail.
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
	// The root, held by a descriptor from here on.
	root, err := unix.Open(o.Merged, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", o.Merged, err)
	}
	defer unix.Close(root)
	if o.Seed != nil {
		if err := o.Seed(o.Merged); err != nil {
			return err
		}
	}
	special, err := mountSpecial(root)
	if err != nil {
		return err
	}
	defer special.close()
	if o.BeforePivot != nil {
		if err := o.BeforePivot(o.Merged); err != nil {
			return err
		}
	}
	// Masks last, so that no volume can be mounted over one.
	if err := mask(special); err != nil {
		return err
	}
	return pivot(root)
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

// mount is mount(2) with the arguments in its error.
func mount(source, target, fstype string, flags uintptr, data string) error {
	if err := unix.Mount(source, target, fstype, flags, data); err != nil {
		return fmt.Errorf("mount %s on %s (%s): %w", source, target, fstype, err)
	}
	return nil
}

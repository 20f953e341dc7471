// Package rootfs mounts a container's root file system: the overlay of
// the image's layers and the container's writable layer, as step 08
// teaches, over many layers. The monitor mounts it in a mount namespace
// of its own, and hands the directory to the runtime (package oci) as
// the bundle's root.path; the runtime mounts /proc, /dev and /sys in it
// and pivots into it, as for any bundle.
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
	// UsernsFD, if not 0, is a user namespace (an open /proc/PID/ns/user)
	// whose id map the layers are seen through: each is mounted
	// idmapped at a directory of its own under IDMapped, and the
	// overlay is made of those. Then files that the host's root owns in
	// a layer belong to the namespace's root. mount_setattr(2)
	UsernsFD int
	IDMapped string
}

// Mount mounts the overlay at o.Merged, in the caller's mount namespace,
// which must be one of its own: nothing here may reach the host's.
func Mount(o Options) error {
	if len(o.Layers) == 0 {
		return errors.New("rootfs: no image layers")
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
	if o.Seed != nil {
		return o.Seed(o.Merged)
	}
	return nil
}

// idmapLayers mounts each layer again at dir/N, seen through the id map of
// the user namespace usernsFD, and returns those mount points. Each is a
// clone of the layer's mount, made with open_tree(2), given the id map
// with mount_setattr(2) while it is attached nowhere, then attached with
// move_mount(2). The files on disk do not change; only this mount
// namespace (the monitor's, and the container's, made as a copy of it)
// sees the new mounts. overlayfs takes idmapped layers since Linux 5.19.
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

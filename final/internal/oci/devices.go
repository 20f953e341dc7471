package oci

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/gocell/gocell/final/internal/cgroups"
	"github.com/gocell/gocell/final/internal/inroot"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// defaultDevices are the devices every container has, whatever its
// config says (runtime-spec, "Default Devices").
var defaultDevices = []specs.LinuxDevice{
	{Path: "/dev/null", Type: "c", Major: 1, Minor: 3},
	{Path: "/dev/zero", Type: "c", Major: 1, Minor: 5},
	{Path: "/dev/full", Type: "c", Major: 1, Minor: 7},
	{Path: "/dev/random", Type: "c", Major: 1, Minor: 8},
	{Path: "/dev/urandom", Type: "c", Major: 1, Minor: 9},
	{Path: "/dev/tty", Type: "c", Major: 5, Minor: 0},
}

// defaultLinks are the links of a usual /dev (runtime-spec, "Dev
// symbolic links").
var defaultLinks = [][2]string{
	{"/proc/self/fd", "/dev/fd"}, {"/proc/self/fd/0", "/dev/stdin"},
	{"/proc/self/fd/1", "/dev/stdout"}, {"/proc/self/fd/2", "/dev/stderr"},
}

// makeDevices makes the default devices and the config's in the root,
// before pivot_root. mknod(2) needs CAP_MKNOD in the initial user
// namespace: in a user namespace the node is a bind mount of the host's
// instead, as runc does.
func makeDevices(root string, s *specs.Spec, userns bool) error {
	rootFd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(rootFd)
	devs := append([]specs.LinuxDevice(nil), s.Linux.Devices...)
	for _, d := range defaultDevices {
		if !hasDevice(devs, d.Path) {
			mode := os.FileMode(0o666)
			d.FileMode = &mode
			devs = append(devs, d)
		}
	}
	for _, d := range devs {
		if err := makeDevice(rootFd, d, userns); err != nil {
			return fmt.Errorf("device %s: %w", d.Path, err)
		}
	}
	for _, l := range defaultLinks {
		if err := link(rootFd, l[0], l[1]); err != nil {
			return err
		}
	}
	// /dev/ptmx is the devpts instance's, when there is one.
	if hasMount(s, "/dev/pts") {
		if err := link(rootFd, "pts/ptmx", "/dev/ptmx"); err != nil {
			return err
		}
	}
	return nil
}

func hasDevice(devs []specs.LinuxDevice, path string) bool {
	for _, d := range devs {
		if filepath.Clean(d.Path) == path {
			return true
		}
	}
	return false
}

func hasMount(s *specs.Spec, dest string) bool {
	for _, m := range s.Mounts {
		if filepath.Clean(m.Destination) == dest {
			return true
		}
	}
	return false
}

func makeDevice(rootFd int, d specs.LinuxDevice, userns bool) error {
	dir, err := inroot.Mkdir(rootFd, filepath.Dir(d.Path), false, inroot.NoSymlinks)
	if err != nil {
		return err
	}
	defer unix.Close(dir)
	name := filepath.Base(d.Path)
	var typ uint32
	switch d.Type {
	case "c", "u":
		typ = unix.S_IFCHR
	case "b":
		typ = unix.S_IFBLK
	case "p":
		typ = unix.S_IFIFO
	default:
		return fmt.Errorf("device type %q", d.Type)
	}
	// An existing node (a /dev bound from the host) is left alone if it
	// is that very device; anything else there (a symlink, a file, a
	// node of another device: what an image or a volume put in place)
	// is refused, never followed or used.
	var st unix.Stat_t
	if unix.Fstatat(dir, name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil {
		if st.Mode&unix.S_IFMT == typ && (typ == unix.S_IFIFO ||
			unix.Major(st.Rdev) == uint32(d.Major) && unix.Minor(st.Rdev) == uint32(d.Minor)) {
			return nil
		}
		return fmt.Errorf("%s is already there, and is not the device %d:%d: refused", d.Path, d.Major, d.Minor)
	}
	mode := uint32(0o666)
	if d.FileMode != nil {
		mode = uint32(d.FileMode.Perm())
	}
	if userns && typ != unix.S_IFIFO {
		// Equivalent to: touch /dev/X && mount --bind /dev/X /dev/X
		fd, err := unix.Openat(dir, name, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|
			unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
		if err != nil {
			return err
		}
		unix.Close(fd)
		target, err := unix.Openat(dir, name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(target)
		return unix.Mount(d.Path, fmt.Sprintf("/proc/self/fd/%d", target), "", unix.MS_BIND, "")
	}
	// Equivalent to: mknod -m MODE /dev/X TYPE MAJOR MINOR
	if err := unix.Mknodat(dir, name, typ|mode, int(unix.Mkdev(uint32(d.Major), uint32(d.Minor)))); err != nil {
		return err
	}
	if err := unix.Fchmodat(dir, name, mode, 0); err != nil {
		return err
	}
	uid, gid := -1, -1
	if d.UID != nil {
		uid = int(*d.UID)
	}
	if d.GID != nil {
		gid = int(*d.GID)
	}
	return unix.Fchownat(dir, name, uid, gid, unix.AT_SYMLINK_NOFOLLOW)
}

// link makes the symlink path -> target in the root, unless path exists.
func link(rootFd int, target, path string) error {
	dir, err := inroot.Mkdir(rootFd, filepath.Dir(path), false, inroot.NoSymlinks)
	if err != nil {
		return err
	}
	defer unix.Close(dir)
	err = unix.Symlinkat(target, dir, filepath.Base(path))
	if errors.Is(err, unix.EEXIST) {
		return nil
	}
	return err
}

// defaultAllowed are the device rules every container gets after the
// config's, as runc adds them: mknod of anything (opening is what
// counts), and the default devices, the terminals of its devpts, and
// /dev/net/tun. A config that denies everything ("a", rwm), as podman's
// and containerd's do, leaves exactly these.
var defaultAllowed = []cgroups.DeviceRule{
	{Allow: true, Type: 'c', Major: -1, Minor: -1, Access: "m"},
	{Allow: true, Type: 'b', Major: -1, Minor: -1, Access: "m"},
	{Allow: true, Type: 'c', Major: 1, Minor: 3, Access: "rwm"},
	{Allow: true, Type: 'c', Major: 1, Minor: 5, Access: "rwm"},
	{Allow: true, Type: 'c', Major: 1, Minor: 7, Access: "rwm"},
	{Allow: true, Type: 'c', Major: 1, Minor: 8, Access: "rwm"},
	{Allow: true, Type: 'c', Major: 1, Minor: 9, Access: "rwm"},
	{Allow: true, Type: 'c', Major: 5, Minor: 0, Access: "rwm"},
	{Allow: true, Type: 'c', Major: 5, Minor: 2, Access: "rwm"},
	{Allow: true, Type: 'c', Major: 136, Minor: -1, Access: "rwm"},
	{Allow: true, Type: 'c', Major: 10, Minor: 200, Access: "rwm"},
}

// deviceRules turns linux.resources.devices into the cgroup's rules:
// every device denied first, whatever the config says (runc's default
// too: a config without rules must not leave a container the host's
// disks), then the config's rules, then the defaults.
func deviceRules(spec []specs.LinuxDeviceCgroup) ([]cgroups.DeviceRule, error) {
	out := []cgroups.DeviceRule{{Allow: false, Type: 'a', Major: -1, Minor: -1, Access: "rwm"}}
	for i, d := range spec {
		r := cgroups.DeviceRule{Allow: d.Allow, Type: 'a', Major: -1, Minor: -1, Access: d.Access}
		if d.Type != "" {
			r.Type = d.Type[0]
		}
		if r.Access == "" {
			r.Access = "rwm"
		}
		if d.Major != nil {
			r.Major = *d.Major
		}
		if d.Minor != nil {
			r.Minor = *d.Minor
		}
		if err := r.Check(); err != nil || len(d.Type) > 1 {
			return nil, fmt.Errorf("linux.resources.devices[%d]: %v", i, err)
		}
		out = append(out, r)
	}
	return append(out, defaultAllowed...), nil
}

// checkDevices refuses device rules the kernel would.
func checkDevices(spec []specs.LinuxDeviceCgroup) error {
	_, err := deviceRules(spec)
	return err
}

// applyDevices gives the cgroup its device rules, with or without a
// linux.resources in the config.
func applyDevices(cg cgroups.Manager, r *specs.LinuxResources) error {
	var devices []specs.LinuxDeviceCgroup
	if r != nil {
		devices = r.Devices
	}
	rules, err := deviceRules(devices)
	if err != nil {
		return err
	}
	return cg.SetDevices(rules)
}

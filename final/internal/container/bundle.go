package container

// How a container becomes an OCI bundle.
//
// gocell does not start containers its own way: each start writes the
// container's bundle, as Docker writes one for runc, and hands it to the
// runtime of package oci, the code gocell-runtime runs for podman and
// containerd. The bundle is the container's directory: config.json,
// written here from the image's config and the flags, and root.path
// "merged", where the monitor has mounted the overlay. `gocell inspect
// --spec` prints the config.json. runtime-spec config.md

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/gocell/gocell/final/internal/inroot"
	"github.com/gocell/gocell/final/internal/oci"
	"github.com/gocell/gocell/final/internal/seccomp"
	"github.com/gocell/gocell/final/internal/spawn"
	"github.com/gocell/gocell/final/internal/volume"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// specFile is the bundle's config, in the container's directory.
const specFile = "config.json"

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

// mounts are the file systems every container gets, before its volumes:
// Docker's, and no cgroup file system (gocell never mounted one).
var mounts = []specs.Mount{
	{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
	{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
	{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
	{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
	{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
	{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
}

// bundleSpec is the config.json of a start of the container whose root
// file system is mounted at root (read here for the user's ids), and
// whose network namespace, for --network container:NAME, is netns.
func (s *Store) bundleSpec(st *State, root string, netns string) (*specs.Spec, error) {
	spec := st.Spec
	uid, gid, err := lookupUser(root, spec.User)
	if err != nil {
		return nil, err
	}
	// Docker's capabilities for root, with --cap-add and --cap-drop; a
	// user other than root gets none, only the bounding set, as with
	// Docker.
	capList, err := capabilities(spec)
	if err != nil {
		return nil, err
	}
	caps := &specs.LinuxCapabilities{Bounding: capList}
	if uid == 0 {
		caps.Effective, caps.Permitted = capList, capList
	}
	cwd := spec.WorkingDir
	if cwd == "" {
		cwd = "/"
	}
	out := &specs.Spec{
		Version: specs.Version,
		Root:    &specs.Root{Path: "merged", Readonly: spec.ReadOnly},
		Process: &specs.Process{
			Terminal: spec.Tty,
			Args:     spec.Args, Env: mergeEnv(spec.Env, nil), Cwd: cwd,
			User:            specs.User{UID: uid, GID: gid},
			Capabilities:    caps,
			NoNewPrivileges: spec.NoNewPrivileges,
		},
		Hostname: spec.Hostname,
		Mounts:   append([]specs.Mount{}, mounts...),
		Linux: &specs.Linux{
			// Each container's cgroup below gocell's (cgroups.DefaultParent).
			CgroupsPath:   "/gocell/" + st.ID,
			MaskedPaths:   maskedPaths,
			ReadonlyPaths: readonlyPaths,
			Resources:     resources(spec.Resources, false),
			Sysctl:        sysctls(spec),
		},
	}
	if spec.Tty {
		out.Process.ConsoleSize = &specs.Box{Height: 24, Width: 80}
	}
	// The namespaces of steps 01 to 06, and a cgroup namespace:
	// inside, /proc/self/cgroup shows the container's cgroup as "/".
	// cgroup_namespaces(7)
	for _, t := range []specs.LinuxNamespaceType{specs.PIDNamespace, specs.IPCNamespace,
		specs.UTSNamespace, specs.MountNamespace, specs.CgroupNamespace} {
		out.Linux.Namespaces = append(out.Linux.Namespaces, specs.LinuxNamespace{Type: t})
	}
	switch {
	case netns != "":
		out.Linux.Namespaces = append(out.Linux.Namespaces,
			specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: netns})
	case spec.Network != "host":
		out.Linux.Namespaces = append(out.Linux.Namespaces, specs.LinuxNamespace{Type: specs.NetworkNamespace})
	}
	if spec.UserNS {
		out.Linux.Namespaces = append(out.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
		m := []specs.LinuxIDMapping{{ContainerID: 0, HostID: UserNSHostID, Size: UserNSSize}}
		out.Linux.UIDMappings, out.Linux.GIDMappings = m, m
	}
	if out.Linux.Seccomp, err = seccompProfile(spec); err != nil {
		return nil, err
	}
	vols, err := s.Volumes()
	if err != nil {
		return nil, err
	}
	// Parents first, so that -v a:/x/y -v b:/x still shows a at /x/y.
	sorted, err := volume.SortMounts(spec.Mounts)
	if err != nil {
		return nil, err
	}
	for _, m := range sorted {
		source, err := vols.Resolve(m)
		if err != nil {
			return nil, err
		}
		opts := []string{"rbind", "rprivate"}
		if m.ReadOnly {
			opts = append(opts, "ro")
		}
		out.Mounts = append(out.Mounts, specs.Mount{Destination: m.Destination, Type: "bind",
			Source: source, Options: opts})
	}
	// --read-only keeps /tmp and /run writable, as podman's does; then
	// --tmpfs, which may say otherwise for either.
	tmpfs := spec.Tmpfs
	if spec.ReadOnly {
		tmpfs = append([]string{"/tmp:mode=1777", "/run:mode=755"}, tmpfs...)
	}
	for _, t := range tmpfs {
		m, err := TmpfsMount(t)
		if err != nil {
			return nil, err
		}
		out.Mounts = slices.DeleteFunc(out.Mounts, func(x specs.Mount) bool { return x.Destination == m.Destination })
		out.Mounts = append(out.Mounts, m)
	}
	// The files the network gave it (see connect).
	etc := filepath.Join(s.Dir(st.ID), "etc")
	for _, name := range []string{"hosts", "hostname", "resolv.conf"} {
		out.Mounts = append(out.Mounts, specs.Mount{Destination: "/etc/" + name, Type: "bind",
			Source: filepath.Join(etc, name), Options: []string{"bind", "rprivate"}})
	}
	return out, nil
}

// CheckResources refuses limits that cannot go together (swap below the
// memory, a reservation above it), as the runtime will at the start.
func CheckResources(r Resources) error {
	return oci.CheckResources(resources(r, true))
}

// resources are the limits of the container's cgroup, in the spec's
// terms: a CPU quota per 100 ms period, bytes, tasks, CPU lists. With
// all, every limit is there, a zero too, for an update to replace the
// runtime's; else only those set, as a config.json is written.
func resources(r Resources, all bool) *specs.LinuxResources {
	out := &specs.LinuxResources{}
	if !all {
		// Every device is denied, but those runc and Docker allow.
		out.Devices = []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}}
	}
	if r.MemoryBytes > 0 || r.MemoryReservationBytes > 0 || all {
		out.Memory = &specs.LinuxMemory{}
		if r.MemoryBytes > 0 || all {
			out.Memory.Limit = &r.MemoryBytes
		}
		if r.MemoryReservationBytes > 0 || all {
			out.Memory.Reservation = &r.MemoryReservationBytes
		}
		if r.MemorySwapBytes != 0 || all {
			out.Memory.Swap = &r.MemorySwapBytes
		}
	}
	if r.PidsMax > 0 || all {
		out.Pids = &specs.LinuxPids{Limit: r.PidsMax}
	}
	if r.CPUs > 0 || r.CPUShares > 0 || r.CPUSetCPUs != "" || r.CPUSetMems != "" || all {
		out.CPU = &specs.LinuxCPU{Cpus: r.CPUSetCPUs, Mems: r.CPUSetMems}
		if r.CPUs > 0 || all {
			quota, period := int64(r.CPUs*100000), uint64(100000)
			out.CPU.Quota, out.CPU.Period = &quota, &period
		}
		if r.CPUShares > 0 || all {
			out.CPU.Shares = &r.CPUShares
		}
	}
	return out
}

// sysctls are set inside the container's own network namespace (the
// writer's is the one /proc/sys/net shows). proc(5) /proc/sys/net
//
// IPv6 is off on every interface but lo: gocell's firewall rules are
// IPv4 only, so an IPv6 address (made from a router advertisement on
// the bridge, or set by a process inside) would reach past them. The
// interface the network adds after create takes the "default" settings.
func sysctls(spec Spec) map[string]string {
	if spec.Network == "host" || strings.HasPrefix(spec.Network, "container:") {
		return nil
	}
	return map[string]string{"net.ipv6.conf.default.disable_ipv6": "1"}
}

// capabilities are the container's: Docker's, with --cap-add and
// --cap-drop.
func capabilities(spec Spec) ([]string, error) {
	return spawn.Adjust(spawn.DefaultCaps, spec.CapAdd, spec.CapDrop)
}

// TmpfsMount is a --tmpfs PATH[:OPTIONS] mount, with Docker's defaults
// (nosuid, nodev, noexec) before the options given, which may undo them
// (exec). Only the options of tmpfs(5) and the usual mount flags are
// taken.
func TmpfsMount(arg string) (specs.Mount, error) {
	dest, optText, _ := strings.Cut(arg, ":")
	if !filepath.IsAbs(dest) || filepath.Clean(dest) == "/" {
		return specs.Mount{}, fmt.Errorf("--tmpfs %q: the path must be absolute, and not /", arg)
	}
	opts := []string{"nosuid", "nodev", "noexec"}
	if optText != "" {
		for _, o := range strings.Split(optText, ",") {
			key, _, hasValue := strings.Cut(o, "=")
			switch {
			case hasValue && (key == "size" || key == "mode" || key == "uid" || key == "gid" ||
				key == "nr_inodes" || key == "nr_blocks"):
			case !hasValue && (key == "ro" || key == "rw" || key == "exec" || key == "noexec" || key == "suid" ||
				key == "nosuid" || key == "dev" || key == "nodev" || key == "noatime" || key == "relatime"):
			default:
				return specs.Mount{}, fmt.Errorf("--tmpfs %q: option %q is not one of tmpfs(5)'s", arg, o)
			}
			opts = append(opts, o)
		}
	}
	return specs.Mount{Destination: filepath.Clean(dest), Type: "tmpfs", Source: "tmpfs", Options: opts}, nil
}

// seccompProfile is the system call filter: Docker's default profile,
// none, or the user's own, for the container's capabilities (Docker's
// profile allows some calls only with a capability, mount(2) with
// CAP_SYS_ADMIN say).
func seccompProfile(spec Spec) (*specs.LinuxSeccomp, error) {
	caps, err := capabilities(spec)
	if err != nil {
		return nil, err
	}
	switch spec.Seccomp {
	case SeccompUnconfined:
		return nil, nil
	case SeccompCustom:
		return seccomp.Parse(spec.SeccompProfile, "of the container", caps)
	case "":
		return seccomp.Default(caps)
	}
	return nil, fmt.Errorf("seccomp %q: %w", spec.Seccomp, seccomp.ErrInvalid)
}

// writeSpec writes the bundle's config.json, and checks it as the
// runtime will: what gocell asks of the runtime, it can do.
func (s *Store) writeSpec(id string, spec *specs.Spec) error {
	if err := oci.Check(spec); err != nil {
		return fmt.Errorf("the container's spec: %w", err)
	}
	// As people write it: "&&" in a command, not "\u0026\u0026".
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(spec); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(s.Dir(id), specFile), buf.Bytes(), 0o600)
}

// ReadSpec returns the config.json of the container's last start, for
// `gocell inspect --spec`.
func (s *Store) ReadSpec(ref string) ([]byte, error) {
	st, err := s.Get(ref)
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(filepath.Join(s.Dir(st.ID), specFile))
	if os.IsNotExist(err) {
		return nil, fmt.Errorf("%s has no spec yet: it is written when the container starts", st.Name)
	}
	return data, err
}

// mergeEnv adds the entries of extra to base, replacing those with the
// same name, and makes sure there is a PATH.
func mergeEnv(base, extra []string) []string {
	var out []string
	index := map[string]int{}
	for _, kv := range append(append([]string{}, base...), extra...) {
		k, _, _ := strings.Cut(kv, "=")
		if i, ok := index[k]; ok {
			out[i] = kv
			continue
		}
		index[k] = len(out)
		out = append(out, kv)
	}
	if _, ok := index["PATH"]; !ok {
		out = append(out, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
	}
	return out
}

// lookupUser turns "", "uid", "uid:gid", "name" or "name:group" into ids,
// reading /etc/passwd and /etc/group of the container's root for names.
func lookupUser(root, user string) (uint32, uint32, error) {
	if user == "" {
		return 0, 0, nil
	}
	u, g, hasGroup := strings.Cut(user, ":")
	uid, gid, err := lookupID(root, "/etc/passwd", u)
	if err != nil {
		return 0, 0, fmt.Errorf("user %q: %w", user, err)
	}
	if hasGroup {
		gid, _, err = lookupID(root, "/etc/group", g)
		if err != nil {
			return 0, 0, fmt.Errorf("group %q: %w", g, err)
		}
	}
	return uid, gid, nil
}

// lookupID reads a number, or finds a name in a passwd-style file of the
// root, and returns its id (field 3) and, for passwd, the group id
// (field 4).
func lookupID(root, file, name string) (uint32, uint32, error) {
	if n, err := strconv.ParseUint(name, 10, 32); err == nil {
		return uint32(n), uint32(n), nil
	}
	f, err := openConfigFile(root, file)
	if err != nil {
		return 0, 0, fmt.Errorf("not a number, and no %s: %w", file, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(io.LimitReader(f, 4<<20))
	for sc.Scan() {
		fields := strings.Split(sc.Text(), ":")
		if len(fields) < 3 || fields[0] != name {
			continue
		}
		id, err := strconv.ParseUint(fields[2], 10, 32)
		if err != nil {
			break
		}
		second := id
		if len(fields) > 3 {
			if g, err := strconv.ParseUint(fields[3], 10, 32); err == nil {
				second = g
			}
		}
		return uint32(id), uint32(second), nil
	}
	return 0, 0, fmt.Errorf("no such entry in %s", file)
}

// openConfigFile opens a file of the image's, such as /etc/passwd, from
// the host. The image made it, so it may be anything: a symlink to the
// host's /etc/shadow, a FIFO that would block forever, a device. It is
// resolved inside the root (openat2(2) RESOLVE_IN_ROOT), and only a
// regular file of a file system other than procfs and sysfs is read,
// opened without blocking; the caller bounds its size.
func openConfigFile(root, path string) (*os.File, error) {
	rootFd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(rootFd)
	fd, err := inroot.Open(rootFd, path, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_NOCTTY, inroot.Follow)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), path)
	info, err := f.Stat()
	if err != nil || !info.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	// Nor a file of the kernel's, which procfs and sysfs show as regular
	// files: through a running container's /proc, /etc/passwd ->
	// /proc/kmsg would have the host's root read (and so take) the
	// kernel's log messages. fstatfs(2)
	if fs, err := inroot.FSType(fd); err != nil || fs == unix.PROC_SUPER_MAGIC || fs == unix.SYSFS_MAGIC {
		f.Close()
		return nil, fmt.Errorf("%s is not a file of the image's (procfs or sysfs): refused", path)
	}
	return f, nil
}

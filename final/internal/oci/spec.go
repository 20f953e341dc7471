package oci

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// ErrUnsupported marks a configuration that names something gocell
// cannot do: it is refused, by name, never ignored.
var ErrUnsupported = errors.New("not supported by gocell-runtime")

// Load reads a bundle's config.json and checks it: every field it sets is
// one gocell-runtime carries out. A relative root.path stays relative to
// the bundle, which is the container process's working directory: in a
// user namespace, it may not be allowed to reach the bundle from "/".
func Load(bundle string) (*specs.Spec, error) {
	data, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		return nil, fmt.Errorf("bundle %s: %w", bundle, err)
	}
	var s specs.Spec
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("bundle %s: config.json: %w", bundle, err)
	}
	if err := Check(&s); err != nil {
		return nil, fmt.Errorf("bundle %s: config.json: %w", bundle, err)
	}
	root := s.Root.Path
	if !filepath.IsAbs(root) {
		root = filepath.Join(bundle, root)
	}
	if st, err := os.Stat(root); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("bundle %s: root.path %s is not a directory", bundle, root)
	}
	return &s, nil
}

// Check refuses a configuration gocell-runtime would not carry out in
// full. The spec's clients write ociVersion 1.0.x (podman 4.3,
// containerd 1.6) to 1.2.x: any 1.x is read, another major is refused.
func Check(s *specs.Spec) error {
	major, _, _ := strings.Cut(s.Version, ".")
	if n, err := strconv.Atoi(major); err != nil || n != 1 {
		return fmt.Errorf("ociVersion %q: gocell-runtime reads runtime-spec 1.x", s.Version)
	}
	if s.Root == nil || s.Root.Path == "" {
		return errors.New("root.path is missing")
	}
	if s.Process == nil || len(s.Process.Args) == 0 {
		return errors.New("process.args is missing: there is nothing to run")
	}
	if !filepath.IsAbs(s.Process.Cwd) {
		return fmt.Errorf("process.cwd %q: the spec wants an absolute path", s.Process.Cwd)
	}
	if s.Linux == nil {
		return errors.New("linux is missing: gocell-runtime runs Linux containers")
	}
	var bad []string
	add := func(set bool, what string) {
		if set {
			bad = append(bad, what)
		}
	}
	p, l := s.Process, s.Linux
	add(p.SelinuxLabel != "", "process.selinuxLabel (SELinux)")
	add(p.IOPriority != nil, "process.ioPriority")
	add(p.Scheduler != nil, "process.scheduler")
	add(p.ExecCPUAffinity != nil, "process.execCPUAffinity")
	add(l.MountLabel != "", "linux.mountLabel (SELinux)")
	add(l.IntelRdt != nil, "linux.intelRdt")
	add(l.Personality != nil, "linux.personality")
	add(len(l.TimeOffsets) > 0, "linux.timeOffsets")
	if sc := l.Seccomp; sc != nil {
		add(sc.ListenerPath != "", "linux.seccomp.listenerPath")
		add(len(sc.Flags) > 0, "linux.seccomp.flags")
	}
	for _, ns := range l.Namespaces {
		switch ns.Type {
		case specs.PIDNamespace, specs.TimeNamespace, specs.UserNamespace:
			// Go writes the id maps of a user namespace it creates,
			// and cannot join one (a process of several threads may
			// not); a PID namespace joined takes effect for children.
			add(ns.Path != "", fmt.Sprintf("joining the %s namespace by path", ns.Type))
		case specs.NetworkNamespace, specs.IPCNamespace, specs.UTSNamespace,
			specs.MountNamespace, specs.CgroupNamespace:
		default:
			bad = append(bad, fmt.Sprintf("namespace type %q", ns.Type))
		}
	}
	if r := l.Resources; r != nil {
		add(r.BlockIO != nil, "linux.resources.blockIO")
		add(len(r.HugepageLimits) > 0, "linux.resources.hugepageLimits")
		add(r.Network != nil, "linux.resources.network")
		add(len(r.Rdma) > 0, "linux.resources.rdma")
		add(len(r.Unified) > 0, "linux.resources.unified")
		if m := r.Memory; m != nil {
			add(m.Kernel != nil, "linux.resources.memory.kernel")
			add(m.KernelTCP != nil, "linux.resources.memory.kernelTCP")
			add(m.Swappiness != nil, "linux.resources.memory.swappiness")
			add(m.DisableOOMKiller != nil && *m.DisableOOMKiller, "linux.resources.memory.disableOOMKiller")
		}
		if c := r.CPU; c != nil {
			add(c.RealtimeRuntime != nil || c.RealtimePeriod != nil, "linux.resources.cpu realtime")
			add(c.Idle != nil, "linux.resources.cpu.idle")
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("%w: %s", ErrUnsupported, strings.Join(bad, ", "))
	}
	for _, rl := range p.Rlimits {
		if _, ok := rlimits[rl.Type]; !ok {
			return fmt.Errorf("process.rlimits: unknown type %q", rl.Type)
		}
	}
	if _, err := capSets(p.Capabilities); err != nil {
		return err
	}
	for _, m := range s.Mounts {
		if !filepath.IsAbs(m.Destination) {
			return fmt.Errorf("mount destination %q is not an absolute path", m.Destination)
		}
		if _, err := mountOptions(m.Options); err != nil {
			return fmt.Errorf("mount %s: %w", m.Destination, err)
		}
	}
	return nil
}

// hasNamespace reports whether s asks for a namespace of type t (new or
// joined), and its path.
func hasNamespace(s *specs.Spec, t specs.LinuxNamespaceType) (bool, string) {
	for _, ns := range s.Linux.Namespaces {
		if ns.Type == t {
			return true, ns.Path
		}
	}
	return false, ""
}

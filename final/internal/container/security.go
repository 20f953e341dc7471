package container

import (
	"fmt"

	"github.com/gocell/gocell/final/internal/seccomp"
	"github.com/gocell/gocell/final/internal/spawn"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// spawnConfig works out what every process of a container starts with,
// once per start: Docker's capabilities (spawn.DefaultCaps), the
// container's own session keyring, no_new_privs if asked, and the
// seccomp filter of its profile.
func (s *Store) spawnConfig(st *State) (spawn.Config, error) {
	bounding, err := spawn.Mask(spawn.DefaultCaps)
	if err != nil {
		return spawn.Config{}, err
	}
	c := spawn.Config{Bounding: bounding, NoNewPrivs: st.Spec.NoNewPrivileges,
		// Every process of the container joins this one, and no other
		// container's.
		Keyring: "_ses.gocell." + st.ID[:12],
		// A cgroup namespace, rooted at the container's cgroup: inside,
		// /proc/self/cgroup shows it as "/" instead of the host's path.
		// cgroup_namespaces(7)
		CgroupNS: true}
	var profile *specs.LinuxSeccomp
	switch st.Spec.Seccomp {
	case SeccompUnconfined:
		return c, nil
	case SeccompCustom:
		profile, err = seccomp.Parse(st.Spec.SeccompProfile, "of the container", spawn.DefaultCaps)
	case "":
		profile, err = seccomp.Default(spawn.DefaultCaps)
	default:
		err = fmt.Errorf("seccomp %q: %w", st.Spec.Seccomp, seccomp.ErrInvalid)
	}
	if err != nil {
		return c, err
	}
	if c.Seccomp, err = seccomp.Compile(profile); err != nil {
		return c, err
	}
	return c, nil
}

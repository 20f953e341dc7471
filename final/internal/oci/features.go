package oci

import (
	"github.com/gocell/gocell/final/internal/spawn"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-spec/specs-go/features"
)

// Features says what gocell-runtime supports, as runtime-spec's
// features.md asks a runtime to (runc features prints the same form).
func Features() *features.Features {
	t := true
	hooks := []string{"prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"}
	var opts []string
	for o := range mountFlags {
		opts = append(opts, o)
	}
	for o := range propagations {
		opts = append(opts, o)
	}
	opts = append(opts, "bind", "rbind")
	var ns []string
	for n := range cloneFlags {
		ns = append(ns, string(n))
	}
	caps := spawn.Names(^uint64(0) >> (63 - spawn.LastCap()))
	return &features.Features{
		OCIVersionMin: "1.0.0",
		OCIVersionMax: specs.Version,
		Hooks:         hooks,
		MountOptions:  opts,
		Linux: &features.Linux{
			Namespaces:   ns,
			Capabilities: caps,
			Cgroup:       &features.Cgroup{V1: &t, V2: &t},
			Seccomp:      &features.Seccomp{Enabled: &t},
			Apparmor:     &features.Apparmor{Enabled: &t},
			MountExtensions: &features.MountExtensions{
				IDMap: &features.IDMap{Enabled: new(bool)},
			},
		},
		Annotations: map[string]string{"org.gocell.runtime.version": "0.1.0"},
	}
}

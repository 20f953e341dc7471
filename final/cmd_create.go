package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/gocell/gocell/final/internal/cgroups"
	"github.com/gocell/gocell/final/internal/container"
	"github.com/gocell/gocell/final/internal/image"
	"github.com/gocell/gocell/final/internal/names"
	"github.com/gocell/gocell/final/internal/network"
	"github.com/gocell/gocell/final/internal/oci"
	"github.com/gocell/gocell/final/internal/seccomp"
	"github.com/gocell/gocell/final/internal/spawn"
	"github.com/gocell/gocell/final/internal/volume"
	"github.com/urfave/cli/v2"
)

// containerFlags are the flags of create and run.
func containerFlags() []cli.Flag {
	return append([]cli.Flag{
		&cli.StringFlag{Name: "name", Usage: "the container's name (default: made from its id)"},
		&cli.StringSliceFlag{Name: "env", Aliases: []string{"e"}, Usage: "set an environment variable, KEY=VALUE"},
		&cli.StringFlag{Name: "workdir", Aliases: []string{"w"}, Usage: "working directory inside"},
		&cli.StringFlag{Name: "user", Aliases: []string{"u"}, Usage: "user inside: UID[:GID] or NAME[:GROUP]"},
		&cli.StringFlag{Name: "hostname", Usage: "hostname inside (default: the short id)"},
		&cli.StringFlag{Name: "network", Value: "bridge",
			Usage: "bridge (the default network), a network's name, none, host, or container:NAME"},
		&cli.StringSliceFlag{Name: "publish", Aliases: []string{"p"},
			Usage: "publish a port: [HOSTIP:]HOSTPORT:CTRPORT[/tcp|udp] (all of the host's addresses without HOSTIP)"},
		&cli.StringSliceFlag{Name: "volume", Aliases: []string{"v"},
			Usage: "mount a volume or host directory: NAME:/PATH[:ro] or /HOST:/PATH[:ro]"},
		&cli.BoolFlag{Name: "interactive", Aliases: []string{"i"}, Usage: "keep stdin open"},
		&cli.BoolFlag{Name: "tty", Aliases: []string{"t"}, Usage: "give the command a terminal"},
		&cli.BoolFlag{Name: "rm", Usage: "remove the container when it stops"},
		&cli.BoolFlag{Name: "userns", Usage: "a user namespace: root inside is uid 100000 outside, " +
			"and owns only what the container made"},
		&cli.StringSliceFlag{Name: "security-opt", Usage: "seccomp=unconfined (no system call filter), " +
			"seccomp=PROFILE.json (a profile in Docker's format instead of Docker's default), " +
			"or no-new-privileges"},
		&cli.StringFlag{Name: "entrypoint", Usage: "run this program instead of the image's entrypoint (and without its Cmd); \"\" for none"},
		&cli.StringSliceFlag{Name: "env-file", Usage: "read KEY=VALUE lines from a file (# comments; KEY alone takes the host's value)"},
		&cli.BoolFlag{Name: "read-only", Usage: "the root file system read-only, with tmpfs at /tmp and /run"},
		&cli.StringSliceFlag{Name: "tmpfs", Usage: "mount a tmpfs: /PATH[:size=64m,mode=1777,...]"},
		&cli.StringSliceFlag{Name: "cap-add", Usage: "add a capability, such as NET_ADMIN (ALL: all of them)"},
		&cli.StringSliceFlag{Name: "cap-drop", Usage: "drop a capability, such as CHOWN (ALL: all of them)"},
		&cli.StringSliceFlag{Name: "add-host", Usage: "add NAME:IP to /etc/hosts"},
		&cli.StringSliceFlag{Name: "label", Aliases: []string{"l"}, Usage: "a note on the container, KEY=VALUE"},
		&cli.StringFlag{Name: "stop-signal", Usage: "the signal stop sends first (default SIGTERM)"},
		&cli.IntFlag{Name: "stop-timeout", Usage: "seconds stop waits before SIGKILL (default 10)"},
		&cli.StringFlag{Name: "restart", Value: "no", Usage: "no, always, unless-stopped, or on-failure[:N]: start it again when it ends " +
			"(never after a stop or kill)"},
	}, resourceFlags()...)
}

// resourceFlags are the limits of create, run and update, as Docker's.
func resourceFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "memory", Aliases: []string{"m"}, Usage: "memory limit, such as 64M or 1G"},
		&cli.StringFlag{Name: "memory-swap", Usage: "memory plus swap, at least --memory (-1: unlimited swap; default: no swap)"},
		&cli.StringFlag{Name: "memory-reservation", Usage: "soft memory limit: reclaimed down to it first when the host runs short"},
		&cli.StringFlag{Name: "cpus", Usage: "CPU limit, in CPUs, such as 0.5"},
		&cli.Int64Flag{Name: "cpu-shares", Aliases: []string{"c"}, Usage: "CPU weight against other containers when CPUs are busy (2 to 262144, 1024 the default)"},
		&cli.StringFlag{Name: "cpuset-cpus", Usage: "the CPUs it may run on, such as 0-1 or 0,2 (cpuset)"},
		&cli.StringFlag{Name: "cpuset-mems", Usage: "the memory nodes it may use, such as 0 (cpuset)"},
		&cli.Int64Flag{Name: "pids-limit", Usage: "the most processes and threads at once (0 or -1: no limit)"},
	}
}

// applyResources sets in res the limits whose flags were given, checking
// each: create starts from none, update from the container's own.
func applyResources(c *cli.Context, res *container.Resources) error {
	size := func(flag string, min int64) (int64, error) {
		v := c.String(flag)
		n, err := cgroups.ParseSize(v)
		if err != nil || n < min {
			return 0, usageError("--%s %q: not a size of at least %dM, such as 64M or 1G", flag, v, min>>20)
		}
		return n, nil
	}
	var err error
	if c.IsSet("memory") {
		if res.MemoryBytes, err = size("memory", 16<<20); err != nil {
			return err
		}
	}
	if c.IsSet("memory-swap") {
		if c.String("memory-swap") == "-1" {
			res.MemorySwapBytes = -1
		} else if res.MemorySwapBytes, err = size("memory-swap", 16<<20); err != nil {
			return err
		}
		if res.MemoryBytes == 0 {
			return usageError("--memory-swap needs --memory: it is memory plus swap")
		}
	}
	if c.IsSet("memory-reservation") {
		if res.MemoryReservationBytes, err = size("memory-reservation", 1<<20); err != nil {
			return err
		}
	}
	if c.IsSet("cpus") {
		s := c.String("cpus")
		if res.CPUs, err = cgroups.ParseCPUs(s); err != nil {
			return usageError("--cpus %q: %s", s, err)
		}
	}
	if c.IsSet("cpu-shares") {
		n := c.Int64("cpu-shares")
		if n != 0 && (n < 2 || n > 262144) {
			return usageError("--cpu-shares %d: a weight from 2 to 262144 (1024 is the default)", n)
		}
		res.CPUShares = uint64(n)
	}
	for _, f := range []struct {
		flag, what string
		dst        *string
	}{{"cpuset-cpus", "cpus", &res.CPUSetCPUs}, {"cpuset-mems", "mems", &res.CPUSetMems}} {
		if !c.IsSet(f.flag) {
			continue
		}
		v := strings.TrimSpace(c.String(f.flag))
		if err := cgroups.CheckCPUSet(f.what, v); err != nil {
			return usageError("--%s %q: %s", f.flag, v, err)
		}
		*f.dst = v
	}
	if c.IsSet("pids-limit") {
		n := c.Int64("pids-limit")
		switch {
		case n == 0 || n == -1:
			res.PidsMax = 0
		case n < 10:
			// The container's process is gocell, a Go program of several
			// threads, until it executes the command: they count.
			return usageError("--pids-limit %d: at least 10 (until the command starts, "+
				"gocell's set-up threads count too), or -1 for no limit", n)
		default:
			res.PidsMax = n
		}
	}
	return nil
}

func createCommand() *cli.Command {
	return &cli.Command{
		Name:      "create",
		Usage:     "create a container from an image, without starting it",
		ArgsUsage: "IMAGE [COMMAND [ARG...]]",
		Flags:     containerFlags(),
		Action: func(c *cli.Context) error {
			st, err := createContainer(c)
			if err != nil {
				return err
			}
			printf("%s\n", st.ID)
			return nil
		},
	}
}

// createContainer resolves the image (pulling it if it is not here),
// checks every flag, and records the container.
func createContainer(c *cli.Context) (*container.State, error) {
	if err := needArgs(c, 1, "which image?"); err != nil {
		return nil, err
	}
	images, containers, err := stores(c)
	if err != nil {
		return nil, err
	}
	spec, err := specFromFlags(c)
	if err != nil {
		return nil, err
	}
	if err := checkNetworkAndVolumes(containers, spec); err != nil {
		return nil, err
	}
	ref := c.Args().First()
	img, err := images.Get(ref)
	if errors.Is(err, image.ErrNotFound) {
		opts, oerr := pullOptions(c)
		if oerr != nil {
			return nil, oerr
		}
		img, err = images.Pull(c.Context, ref, opts)
		if err != nil {
			return nil, fmt.Errorf("image %s is not here, and pulling it failed "+
				"(offline, make one with scripts/mkimage.sh and gocell import): %w", ref, err)
		}
	}
	if err != nil {
		return nil, err
	}
	if spec.Layers, err = images.LayerDirs(img); err != nil {
		return nil, err
	}
	spec.Image, spec.ImageID = ref, img.ID
	entrypoint := img.Config.Entrypoint
	if c.IsSet("entrypoint") {
		// As Docker: the image's Cmd goes with its entrypoint.
		entrypoint = nil
		if e := c.String("entrypoint"); e != "" {
			entrypoint = []string{e}
		}
	}
	spec.Args = append(append([]string{}, entrypoint...), c.Args().Tail()...)
	if c.Args().Len() == 1 && !c.IsSet("entrypoint") {
		spec.Args = append(spec.Args, img.Config.Cmd...)
	}
	if len(spec.Args) == 0 {
		return nil, usageError("%s has no command (no Entrypoint or Cmd); give one after the image", ref)
	}
	spec.Env = append(append([]string{}, img.Config.Env...), spec.Env...)
	if spec.WorkingDir == "" && img.Config.WorkingDir != "" {
		// As Docker reads an image's: a relative one from "/".
		spec.WorkingDir = filepath.Join("/", img.Config.WorkingDir)
	}
	if spec.User == "" {
		spec.User = img.Config.User
	}
	return containers.Create(c.String("name"), spec)
}

// checkWorkdir refuses a relative -w, as Docker does: relative to what?
func checkWorkdir(dir string) error {
	if dir != "" && !filepath.IsAbs(dir) {
		return usageError("-w %q: the working directory must be an absolute path, such as /app", dir)
	}
	return nil
}

// specFromFlags checks and collects the flags that describe a container.
func specFromFlags(c *cli.Context) (container.Spec, error) {
	spec := container.Spec{
		WorkingDir: c.String("workdir"), User: c.String("user"), Hostname: c.String("hostname"),
		Tty: c.Bool("tty"), Interactive: c.Bool("interactive"), AutoRemove: c.Bool("rm"),
		Network: c.String("network"), UserNS: c.Bool("userns"),
	}
	if err := checkWorkdir(spec.WorkingDir); err != nil {
		return spec, err
	}
	for _, path := range c.StringSlice("env-file") {
		env, err := readEnvFile(path)
		if err != nil {
			return spec, err
		}
		spec.Env = append(spec.Env, env...)
	}
	for _, kv := range c.StringSlice("env") {
		k, _, ok := strings.Cut(kv, "=")
		if !ok || k == "" || strings.ContainsAny(k, " \t\n") {
			return spec, usageError("-e %q: write KEY=VALUE", kv)
		}
		spec.Env = append(spec.Env, kv)
	}
	if err := runFlags(c, &spec); err != nil {
		return spec, err
	}
	if name := c.String("name"); name != "" {
		if err := container.ValidateName(name); err != nil {
			return spec, usageError("%s", err)
		}
	}
	if spec.Hostname != "" && !names.Hostname(spec.Hostname) {
		return spec, usageError("--hostname %q: not a host name: use letters, digits and '-' "+
			"(not first or last), in labels joined by dots, at most %d characters",
			spec.Hostname, names.MaxHostname)
	}
	for _, opt := range c.StringSlice("security-opt") {
		if err := securityOpt(&spec, opt); err != nil {
			return spec, err
		}
	}
	for _, p := range c.StringSlice("publish") {
		port, err := network.ParsePort(p)
		if err != nil {
			return spec, usageError("-p %q: %s", p, err)
		}
		spec.Ports = append(spec.Ports, port)
	}
	if len(spec.Ports) > 0 && container.IsSpecialNetwork(spec.Network) {
		return spec, usageError("-p needs a network of gocell's, not --network %s", spec.Network)
	}
	for _, v := range c.StringSlice("volume") {
		m, err := volume.ParseSpec(v)
		if err != nil {
			return spec, usageError("-v %q: %s", v, err)
		}
		spec.Mounts = append(spec.Mounts, m)
	}
	if spec.UserNS && len(spec.Mounts) > 0 {
		return spec, usageError("--userns with -v is not supported yet: a volume's files " +
			"belong to host users that the container's root is not")
	}
	if err := applyResources(c, &spec.Resources); err != nil {
		return spec, err
	}
	if err := container.CheckResources(spec.Resources); err != nil {
		return spec, usageError("%s", err)
	}
	return spec, nil
}

// securityOpt applies one --security-opt, as Docker spells them (with
// '=' or the older ':'). What gocell does not have, it refuses by name.
func securityOpt(spec *container.Spec, opt string) error {
	sep := "="
	if !strings.Contains(opt, "=") {
		sep = ":"
	}
	key, value, _ := strings.Cut(opt, sep)
	switch key {
	case "seccomp":
		switch value {
		case "":
			return usageError("--security-opt seccomp: give unconfined or a profile's path")
		case "unconfined":
			spec.Seccomp, spec.SeccompProfile = container.SeccompUnconfined, nil
			return nil
		}
		data, err := os.ReadFile(value)
		if err != nil {
			return usageError("--security-opt seccomp=%s: %v", value, err)
		}
		// Compiled once now, so that a bad profile is refused here and
		// not at every start.
		p, err := seccomp.Parse(data, value, spawn.DefaultCaps)
		if err == nil {
			_, err = seccomp.Compile(p)
		}
		if err != nil {
			return usageError("--security-opt seccomp=%s: %v", value, err)
		}
		spec.Seccomp, spec.SeccompProfile = container.SeccompCustom, json.RawMessage(data)
		return nil
	case "no-new-privileges":
		on, err := strconv.ParseBool(value)
		if value == "" {
			on, err = true, nil
		}
		if err != nil {
			return usageError("--security-opt no-new-privileges=%s: write true or false", value)
		}
		spec.NoNewPrivileges = on
		return nil
	case "apparmor", "label", "systempaths", "mask", "unmask":
		return usageError("--security-opt %s: gocell does not support %s", opt, key)
	}
	return usageError("--security-opt %q: unknown option; gocell knows seccomp=unconfined, "+
		"seccomp=PROFILE.json and no-new-privileges", opt)
}

// describe is a one-line summary of a container for messages.
func describe(st *container.State) string {
	return fmt.Sprintf("%s (%s)", st.Name, shortID(st.ID))
}

// checkNetworkAndVolumes checks that the network exists, and creates the
// named volumes the container will use, as Docker does.
func checkNetworkAndVolumes(containers *container.Store, spec container.Spec) error {
	if !container.IsSpecialNetwork(spec.Network) {
		nm, err := containers.Networks()
		if err != nil {
			return err
		}
		if _, err := nm.Get(spec.Network); err != nil {
			return err
		}
	}
	if other, ok := strings.CutPrefix(spec.Network, "container:"); ok {
		if _, err := containers.Get(other); err != nil {
			return err
		}
	}
	vols, err := containers.Volumes()
	if err != nil {
		return err
	}
	for _, m := range spec.Mounts {
		if !m.Named {
			if _, err := vols.Resolve(m); err != nil {
				return err
			}
			continue
		}
		if _, _, err := vols.Create(m.Source); err != nil {
			return err
		}
	}
	return nil
}

// readEnvFile reads --env-file as Docker does: KEY=VALUE a line, the
// value as written (no quotes taken off), # comments and blank lines
// skipped, and KEY alone taking the host's value if it has one.
func readEnvFile(path string) ([]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, usageError("--env-file %s: %v", path, err)
	}
	var env []string
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimLeft(strings.TrimRight(line, "\r"), " \t")
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, _, hasValue := strings.Cut(line, "=")
		if k == "" || strings.ContainsAny(k, " \t") {
			return nil, usageError("--env-file %s, line %d: %q is not KEY=VALUE", path, i+1, line)
		}
		if !hasValue {
			v, ok := os.LookupEnv(k)
			if !ok {
				continue
			}
			line = k + "=" + v
		}
		env = append(env, line)
	}
	return env, nil
}

// runFlags checks and collects the flags Docker users reach for next:
// capabilities, a read-only root, tmpfs mounts, hosts, labels, how stop
// stops, and the restart policy.
func runFlags(c *cli.Context, spec *container.Spec) error {
	spec.CapAdd, spec.CapDrop = c.StringSlice("cap-add"), c.StringSlice("cap-drop")
	if _, err := spawn.Adjust(spawn.DefaultCaps, spec.CapAdd, spec.CapDrop); err != nil {
		return usageError("--cap-add/--cap-drop: %v", err)
	}
	spec.ReadOnly = c.Bool("read-only")
	for _, t := range c.StringSlice("tmpfs") {
		if _, err := container.TmpfsMount(t); err != nil {
			return usageError("%v", err)
		}
		spec.Tmpfs = append(spec.Tmpfs, t)
	}
	for _, h := range c.StringSlice("add-host") {
		name, ip, ok := strings.Cut(h, ":")
		if !ok || !names.Hostname(name) || net.ParseIP(ip) == nil {
			return usageError("--add-host %q: write NAME:IP, such as db:10.0.0.5", h)
		}
		spec.ExtraHosts = append(spec.ExtraHosts, h)
	}
	for _, l := range c.StringSlice("label") {
		k, v, _ := strings.Cut(l, "=")
		if k == "" {
			return usageError("--label %q: write KEY=VALUE", l)
		}
		if spec.Labels == nil {
			spec.Labels = map[string]string{}
		}
		spec.Labels[k] = v
	}
	if s := c.String("stop-signal"); s != "" {
		if _, err := oci.ParseSignal(s); err != nil {
			return usageError("--stop-signal %q: not a signal, such as SIGINT or 2", s)
		}
		spec.StopSignal = s
	}
	if c.IsSet("stop-timeout") {
		n := c.Int("stop-timeout")
		if n < 0 {
			return usageError("--stop-timeout %d: the timeout cannot be negative", n)
		}
		spec.StopTimeout = &n
	}
	policy, max, hasMax := strings.Cut(c.String("restart"), ":")
	switch {
	case policy == "no" && !hasMax, policy == "always" && !hasMax, policy == "unless-stopped" && !hasMax:
	case policy == "on-failure":
		if hasMax {
			n, err := strconv.Atoi(max)
			if err != nil || n < 0 {
				return usageError("--restart %q: on-failure:N, N a number of restarts", c.String("restart"))
			}
			spec.Restart.MaxRetries = n
		}
	default:
		return usageError("--restart %q: no, always, unless-stopped or on-failure[:N]", c.String("restart"))
	}
	if policy != "no" {
		spec.Restart.Name = policy
		if spec.AutoRemove {
			return usageError("--restart %s and --rm: a container removed when it stops cannot start again", policy)
		}
	}
	return nil
}

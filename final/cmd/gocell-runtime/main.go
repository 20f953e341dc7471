// Command gocell-runtime is gocell's OCI runtime: it runs a bundle (a
// root file system and a config.json in runtime-spec's form) with the
// command line of runc, so that podman (--runtime), containerd
// (--runc-binary, or a runtime handler) and so Kubernetes can use it.
//
//	gocell-runtime create ID --bundle DIR [--pid-file F] [--console-socket S]
//	gocell-runtime start ID
//	gocell-runtime state ID
//	gocell-runtime kill ID [SIGNAL] [--all]
//	gocell-runtime delete ID [--force]
//	gocell-runtime run ID --bundle DIR [--detach]
//	gocell-runtime exec ID [--process process.json | COMMAND...] [--detach]
//	gocell-runtime update ID [--resources FILE] [--memory N] [--cpuset-cpus L] ...
//
// The work is in package final/internal/oci; see lessons/10-oci.md.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"time"

	"github.com/gocell/gocell/final/internal/cgroups"
	"github.com/gocell/gocell/final/internal/oci"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"
)

// version is gocell-runtime's version, as runc --version prints its own.
const version = "0.1.0"

func main() {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "__init":
			oci.Init()
		case "__exec":
			oci.ExecInit()
		}
	}
	os.Exit(run(os.Args))
}

// logTo is where errors go besides stderr: --log, in --log-format.
var logTo struct {
	w    io.Writer
	json bool
}

// fail reports err, on stderr and in the log, as runc does: its clients
// read the log's last error to tell their users what went wrong.
func fail(err error) error {
	fmt.Fprintf(os.Stderr, "gocell-runtime: %v\n", err)
	if logTo.w != nil {
		if logTo.json {
			line, _ := json.Marshal(map[string]string{"level": "error", "msg": err.Error(),
				"time": time.Now().UTC().Format(time.RFC3339Nano)})
			fmt.Fprintf(logTo.w, "%s\n", line)
		} else {
			fmt.Fprintf(logTo.w, "%s error: %v\n", time.Now().UTC().Format(time.RFC3339), err)
		}
	}
	return cli.Exit("", 1)
}

func runtimeOf(c *cli.Context) *oci.Runtime { return &oci.Runtime{Root: c.String("root")} }

// withID is the action of a command that takes a container id and does
// one thing with it.
func withID(do func(*oci.Runtime, string) error) cli.ActionFunc {
	return func(c *cli.Context) error {
		id, err := oneID(c)
		if err == nil {
			err = do(runtimeOf(c), id)
		}
		if err != nil {
			return fail(err)
		}
		return nil
	}
}

// oneID is the command's one argument, the container id.
func oneID(c *cli.Context) (string, error) {
	if c.NArg() < 1 {
		return "", fmt.Errorf("%s: the container id is missing (gocell-runtime %s --help)", c.Command.Name, c.Command.Name)
	}
	return c.Args().First(), nil
}

var createFlags = []cli.Flag{
	&cli.StringFlag{Name: "bundle", Aliases: []string{"b"}, Value: ".", Usage: "the bundle: config.json and the root file system"},
	&cli.StringFlag{Name: "pid-file", Usage: "write the container process's pid here"},
	&cli.StringFlag{Name: "console-socket", Usage: "unix socket that receives the terminal's master (process.terminal)"},
	&cli.BoolFlag{Name: "no-new-keyring", Usage: "keep the caller's session keyring"},
	&cli.BoolFlag{Name: "no-pivot", Usage: "refused: gocell-runtime always uses pivot_root"},
	&cli.IntFlag{Name: "preserve-fds", Usage: "refused unless 0: pass more descriptors"},
}

func createOptions(c *cli.Context) (oci.CreateOptions, error) {
	if c.Bool("no-pivot") {
		return oci.CreateOptions{}, errors.New("--no-pivot: gocell-runtime always uses pivot_root(2)")
	}
	if c.Int("preserve-fds") != 0 {
		return oci.CreateOptions{}, errors.New("--preserve-fds: not supported")
	}
	return oci.CreateOptions{PidFile: c.String("pid-file"), ConsoleSocket: c.String("console-socket"),
		NoNewKeyring: c.Bool("no-new-keyring")}, nil
}

func run(args []string) int {
	app := &cli.App{
		Name:    "gocell-runtime",
		Usage:   "gocell's OCI runtime, with runc's command line",
		Version: version,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "root", Value: oci.DefaultRoot, Usage: "where the containers' state is kept"},
			&cli.StringFlag{Name: "log", Usage: "also write errors to this file"},
			&cli.StringFlag{Name: "log-format", Value: "text", Usage: "text or json"},
			&cli.BoolFlag{Name: "debug", Usage: "accepted; gocell-runtime logs errors only"},
			&cli.BoolFlag{Name: "systemd-cgroup", Usage: "refused: cgroups are made in cgroupfs, not by systemd"},
			&cli.StringFlag{Name: "rootless", Usage: "accepted if false or auto: gocell-runtime runs as root"},
		},
		Before: func(c *cli.Context) error {
			if p := c.String("log"); p != "" {
				f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
				if err != nil {
					return fail(fmt.Errorf("--log: %w", err))
				}
				logTo.w = f
			}
			switch c.String("log-format") {
			case "text":
			case "json":
				logTo.json = true
			default:
				return fail(fmt.Errorf("--log-format %q: text or json", c.String("log-format")))
			}
			if c.Bool("systemd-cgroup") {
				return fail(errors.New("--systemd-cgroup: not supported; use the cgroupfs cgroup manager (podman --cgroup-manager cgroupfs)"))
			}
			if r := c.String("rootless"); r == "true" {
				return fail(errors.New("--rootless true: gocell-runtime runs as root"))
			}
			if os.Geteuid() != 0 {
				return fail(errors.New("must be run as root (namespaces, cgroups and mounts need it)"))
			}
			return nil
		},
		Commands: []*cli.Command{
			{Name: "create", Usage: "make a container from a bundle; start runs it", ArgsUsage: "ID", Flags: createFlags,
				Action: func(c *cli.Context) error {
					id, err := oneID(c)
					if err != nil {
						return fail(err)
					}
					o, err := createOptions(c)
					if err != nil {
						return fail(err)
					}
					if _, err := runtimeOf(c).Create(id, c.String("bundle"), o); err != nil {
						return fail(err)
					}
					return nil
				}},
			{Name: "start", Usage: "run a created container's process", ArgsUsage: "ID",
				Action: withID((*oci.Runtime).Start)},
			{Name: "state", Usage: "print a container's state (runtime-spec's JSON)", ArgsUsage: "ID",
				Action: withID(func(r *oci.Runtime, id string) error {
					st, err := r.State(id)
					if err != nil {
						return err
					}
					return printJSON(st)
				})},
			{Name: "kill", Usage: "send a signal (default SIGTERM) to a container's process", ArgsUsage: "ID [SIGNAL]",
				Flags: []cli.Flag{&cli.BoolFlag{Name: "all", Aliases: []string{"a"}, Usage: "to every process of the container"}},
				Action: func(c *cli.Context) error {
					id, err := oneID(c)
					if err != nil {
						return fail(err)
					}
					name := "TERM"
					if c.NArg() > 1 {
						name = c.Args().Get(1)
					}
					sig, err := oci.ParseSignal(name)
					if err == nil {
						err = runtimeOf(c).Kill(id, sig, c.Bool("all"))
					}
					if err != nil {
						return fail(err)
					}
					return nil
				}},
			{Name: "delete", Usage: "remove a stopped container (or any, with --force)", ArgsUsage: "ID",
				Flags: []cli.Flag{&cli.BoolFlag{Name: "force", Aliases: []string{"f"}, Usage: "kill it first if it runs"}},
				Action: func(c *cli.Context) error {
					id, err := oneID(c)
					if err == nil {
						err = runtimeOf(c).Delete(id, c.Bool("force"))
					}
					if err != nil && !(c.Bool("force") && errors.Is(err, oci.ErrNotExist)) {
						return fail(err)
					}
					return nil
				}},
			{Name: "run", Usage: "create and start a container, and wait for it (unless --detach)", ArgsUsage: "ID",
				Flags: append(createFlags, &cli.BoolFlag{Name: "detach", Aliases: []string{"d"}, Usage: "return once it runs"},
					&cli.BoolFlag{Name: "keep", Usage: "do not delete the container when it exits"}),
				Action: runAction},
			{Name: "exec", Usage: "run another process in a running container", ArgsUsage: "ID [COMMAND [ARG...]]",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "process", Aliases: []string{"p"}, Usage: "process.json: the process, as config.json's process"},
					&cli.BoolFlag{Name: "detach", Aliases: []string{"d"}, Usage: "return once it runs"},
					&cli.StringFlag{Name: "pid-file", Usage: "write its pid here"},
					&cli.StringFlag{Name: "console-socket", Usage: "unix socket that receives the terminal's master"},
					&cli.BoolFlag{Name: "tty", Aliases: []string{"t"}, Usage: "give it a terminal (with --console-socket)"},
					&cli.StringFlag{Name: "cwd", Usage: "its working directory"},
					&cli.StringSliceFlag{Name: "env", Aliases: []string{"e"}, Usage: "KEY=VALUE, more than once"},
					&cli.StringFlag{Name: "user", Aliases: []string{"u"}, Usage: "UID[:GID]"},
					&cli.BoolFlag{Name: "no-new-privs", Usage: "set no_new_privs"},
				},
				Action: execAction},
			{Name: "pause", Usage: "freeze every process of a container", ArgsUsage: "ID",
				Action: withID((*oci.Runtime).Pause)},
			{Name: "resume", Usage: "thaw a paused container", ArgsUsage: "ID",
				Action: withID((*oci.Runtime).Resume)},
			{Name: "ps", Usage: "list a container's processes", ArgsUsage: "ID",
				Flags: []cli.Flag{&cli.StringFlag{Name: "format", Aliases: []string{"f"}, Value: "table", Usage: "table or json"}},
				Action: func(c *cli.Context) error {
					id, err := oneID(c)
					if err != nil {
						return fail(err)
					}
					pids, err := runtimeOf(c).Pids(id)
					if err != nil {
						return fail(err)
					}
					if c.String("format") == "json" {
						if pids == nil {
							pids = []int{}
						}
						return printJSON(pids)
					}
					fmt.Println("PID")
					for _, p := range pids {
						fmt.Println(p)
					}
					return nil
				}},
			{Name: "list", Usage: "list the containers", Flags: []cli.Flag{
				&cli.StringFlag{Name: "format", Aliases: []string{"f"}, Value: "table", Usage: "table or json"},
				&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "ids only"}},
				Action: func(c *cli.Context) error {
					list, err := runtimeOf(c).List()
					if err != nil {
						return fail(err)
					}
					switch {
					case c.String("format") == "json":
						if list == nil {
							list = []*specs.State{}
						}
						return printJSON(list)
					case c.Bool("quiet"):
						for _, st := range list {
							fmt.Println(st.ID)
						}
					default:
						fmt.Printf("%-20s %-8s %-8s %s\n", "ID", "PID", "STATUS", "BUNDLE")
						for _, st := range list {
							fmt.Printf("%-20s %-8d %-8s %s\n", st.ID, st.Pid, st.Status, st.Bundle)
						}
					}
					return nil
				}},
			{Name: "spec", Usage: "write a config.json to start from (runc spec's, without a terminal)",
				Flags: []cli.Flag{&cli.StringFlag{Name: "bundle", Aliases: []string{"b"}, Value: ".", Usage: "the bundle to write it in"}},
				Action: func(c *cli.Context) error {
					path := filepath.Join(c.String("bundle"), "config.json")
					if _, err := os.Stat(path); err == nil {
						return fail(fmt.Errorf("spec: %s exists: remove it first", path))
					}
					data, err := json.MarshalIndent(oci.DefaultSpec(), "", "\t")
					if err != nil {
						return fail(err)
					}
					if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
						return fail(fmt.Errorf("spec: %w", err))
					}
					return nil
				}},
			{Name: "features", Usage: "print what gocell-runtime supports (runtime-spec's features.json)",
				Action: func(c *cli.Context) error { return printJSON(oci.Features()) }},
			{Name: "update", Usage: "change the limits of a running container, from --resources or the flags",
				ArgsUsage: "ID", Flags: updateFlags, Action: updateAction},
			{Name: "checkpoint", Usage: "refused", Action: func(c *cli.Context) error { return fail(errors.New("checkpoint: not supported")) }},
			{Name: "restore", Usage: "refused", Action: func(c *cli.Context) error { return fail(errors.New("restore: not supported")) }},
		},
		HideHelpCommand: true,
		CommandNotFound: func(c *cli.Context, name string) {
			fmt.Fprintf(os.Stderr, "gocell-runtime: unknown command %q (see gocell-runtime --help)\n", name)
			os.Exit(2)
		},
		OnUsageError: func(c *cli.Context, err error, _ bool) error {
			fmt.Fprintf(os.Stderr, "gocell-runtime: %v\n", err)
			return cli.Exit("", 2)
		},
		ExitErrHandler: func(*cli.Context, error) {},
	}
	err := app.Run(args)
	var ec cli.ExitCoder
	if errors.As(err, &ec) {
		return ec.ExitCode()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "gocell-runtime: %v\n", err)
		return 2
	}
	return 0
}

func printJSON(v any) error {
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

var updateFlags = []cli.Flag{
	&cli.StringFlag{Name: "resources", Aliases: []string{"r"},
		Usage: "a JSON file of linux.resources (- for stdin); the flags below go on top"},
	&cli.StringFlag{Name: "memory", Usage: "memory limit in bytes (K, M, G allowed; -1: none)"},
	&cli.StringFlag{Name: "memory-swap", Usage: "memory plus swap (-1: unlimited swap)"},
	&cli.StringFlag{Name: "memory-reservation", Usage: "soft memory limit"},
	&cli.Uint64Flag{Name: "cpu-share", Aliases: []string{"cpu-shares"}, Usage: "CPU shares, a weight (1024 is the default)"},
	&cli.Int64Flag{Name: "cpu-quota", Usage: "CPU time per period, in microseconds (-1: none)"},
	&cli.Uint64Flag{Name: "cpu-period", Usage: "the period of the quota, in microseconds"},
	&cli.StringFlag{Name: "cpuset-cpus", Usage: "CPUs to run on, such as 0-1"},
	&cli.StringFlag{Name: "cpuset-mems", Usage: "memory nodes to use, such as 0"},
	&cli.Int64Flag{Name: "pids-limit", Usage: "the most processes and threads (-1: none)"},
}

// updateAction is update: runc's flags and --resources, as containerd
// and podman pass them, turned into the part of linux.resources to change.
func updateAction(c *cli.Context) error {
	id, err := oneID(c)
	if err != nil {
		return fail(err)
	}
	var res specs.LinuxResources
	if path := c.String("resources"); path != "" {
		var data []byte
		if path == "-" {
			data, err = io.ReadAll(os.Stdin)
		} else {
			data, err = os.ReadFile(path)
		}
		if err == nil {
			err = json.Unmarshal(data, &res)
		}
		if err != nil {
			return fail(fmt.Errorf("--resources %s: %w", path, err))
		}
	}
	bytes := func(name string) (*int64, error) {
		if !c.IsSet(name) {
			return nil, nil
		}
		v := c.String(name)
		if v == "-1" {
			n := int64(-1)
			return &n, nil
		}
		n, err := cgroups.ParseSize(v)
		if err != nil {
			return nil, fmt.Errorf("--%s: %w", name, err)
		}
		return &n, nil
	}
	memory := func() *specs.LinuxMemory {
		if res.Memory == nil {
			res.Memory = &specs.LinuxMemory{}
		}
		return res.Memory
	}
	cpu := func() *specs.LinuxCPU {
		if res.CPU == nil {
			res.CPU = &specs.LinuxCPU{}
		}
		return res.CPU
	}
	for name, dst := range map[string]func() **int64{
		"memory":             func() **int64 { return &memory().Limit },
		"memory-swap":        func() **int64 { return &memory().Swap },
		"memory-reservation": func() **int64 { return &memory().Reservation },
	} {
		n, err := bytes(name)
		if err != nil {
			return fail(err)
		}
		if n != nil {
			*dst() = n
		}
	}
	if c.IsSet("cpu-share") {
		n := c.Uint64("cpu-share")
		cpu().Shares = &n
	}
	if c.IsSet("cpu-quota") {
		n := c.Int64("cpu-quota")
		cpu().Quota = &n
	}
	if c.IsSet("cpu-period") {
		n := c.Uint64("cpu-period")
		cpu().Period = &n
	}
	if c.IsSet("cpuset-cpus") {
		cpu().Cpus = c.String("cpuset-cpus")
	}
	if c.IsSet("cpuset-mems") {
		cpu().Mems = c.String("cpuset-mems")
	}
	if c.IsSet("pids-limit") {
		res.Pids = &specs.LinuxPids{Limit: c.Int64("pids-limit")}
	}
	if err := runtimeOf(c).Update(id, &res); err != nil {
		return fail(err)
	}
	return nil
}

// runAction is run: create, start, and unless --detach wait for the
// container's process (our child), passing on the signals we get, and
// delete it.
func runAction(c *cli.Context) error {
	id, err := oneID(c)
	if err != nil {
		return fail(err)
	}
	o, err := createOptions(c)
	if err != nil {
		return fail(err)
	}
	r := runtimeOf(c)
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs)
	cmd, err := r.Create(id, c.String("bundle"), o)
	if err != nil {
		return fail(err)
	}
	if err := r.Start(id); err != nil {
		r.Delete(id, true)
		return fail(err)
	}
	if c.Bool("detach") {
		return nil
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	for {
		select {
		case s := <-sigs:
			// SIGCHLD is ours; SIGURG is the Go runtime's own.
			if s == unix.SIGCHLD || s == unix.SIGURG {
				continue
			}
			cmd.Process.Signal(s)
		case err := <-done:
			code := oci.ExitCode(err)
			if !c.Bool("keep") {
				if err := r.Delete(id, true); err != nil {
					fmt.Fprintf(os.Stderr, "gocell-runtime: %v\n", err)
				}
			}
			return cli.Exit("", code)
		}
	}
}

// execAction is exec: the process from --process, or from the arguments
// and flags.
func execAction(c *cli.Context) error {
	id, err := oneID(c)
	if err != nil {
		return fail(err)
	}
	var p specs.Process
	if path := c.String("process"); path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return fail(fmt.Errorf("--process: %w", err))
		}
		if err := json.Unmarshal(data, &p); err != nil {
			return fail(fmt.Errorf("--process %s: %w", path, err))
		}
	} else {
		if c.NArg() < 2 {
			return fail(errors.New("exec: give a command, or --process process.json"))
		}
		// The container's own process, with the command and the
		// flags' changes: its limits and confinement hold for exec.
		base, err := runtimeOf(c).SpecProcess(id)
		if err != nil {
			return fail(err)
		}
		p = *base
		p.Args = c.Args().Slice()[1:]
		p.Env = append(p.Env, c.StringSlice("env")...)
		if cwd := c.String("cwd"); cwd != "" {
			p.Cwd = cwd
		}
		p.Terminal, p.ConsoleSize = c.Bool("tty"), nil
		p.NoNewPrivileges = p.NoNewPrivileges || c.Bool("no-new-privs")
		if u := c.String("user"); u != "" {
			p.User = specs.User{}
			uid, gid, _ := strings.Cut(u, ":")
			fmt.Sscan(uid, &p.User.UID)
			if gid != "" {
				fmt.Sscan(gid, &p.User.GID)
			}
		}
	}
	code, err := runtimeOf(c).Exec(id, oci.ExecOptions{Process: &p, Detach: c.Bool("detach"),
		PidFile: c.String("pid-file"), ConsoleSocket: c.String("console-socket")})
	if err != nil {
		return fail(err)
	}
	return cli.Exit("", code)
}

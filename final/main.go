// Command gocell is a small container runtime, the end of the gocell
// kit's staircase: everything steps 01 to 08 teach, plus images pulled
// from real registries, stored in layers, and the whole life cycle of a
// container (create, start, stop, pause, exec, logs, remove).
//
// This package is the command line only: one file per verb, which parses
// flags, calls the library packages under internal/, and prints. They
// return errors; errors.go maps them to messages and exit codes.
//
//	sudo gocell run --rm busybox echo hello
//	sudo gocell run -d --name web -m 64M busybox httpd -f -p 8080
//	sudo gocell ps
//	sudo gocell exec -it web sh
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/fatih/color"
	"github.com/gocell/gocell/final/internal/container"
	"github.com/gocell/gocell/final/internal/oci"
	"github.com/gocell/gocell/final/internal/shim"
	"github.com/urfave/cli/v2"
)

// defaultRoot is where gocell keeps its state, images and containers.
const defaultRoot = "/var/lib/gocell"

func main() {
	internalProcess()
	os.Exit(run(os.Args))
}

// internalProcess becomes one of the processes gocell starts of itself,
// which are not commands of the CLI and never return: the container's
// process before its command (the runtime's "__init", and "__exec" for
// gocell exec; see final/internal/oci), the holder of a user namespace
// ("__userns", see container.idmapNamespace), and the shim of a detached
// container when gocell-shim is not installed ("__shim", see
// final/internal/shim).
func internalProcess() {
	if len(os.Args) < 2 {
		return
	}
	switch os.Args[1] {
	case "__init":
		oci.Init()
	case "__exec":
		oci.ExecInit()
	case container.UsernsArg:
		container.HoldUserns()
	case container.ShimArg:
		shim.Main(os.Args[2:])
	}
}

// run runs the command line and returns the exit code.
func run(args []string) int {
	app := &cli.App{
		Name:  "gocell",
		Usage: "a small container runtime, built one kernel primitive at a time",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "root", Value: defaultRoot, EnvVars: []string{"GOCELL_ROOT"},
				Usage: "where gocell keeps images and containers"},
			&cli.StringFlag{Name: "config", Value: defaultConfig, EnvVars: []string{"GOCELL_CONFIG"},
				Usage: "configuration file (registry mirrors)"},
		},
		Commands: []*cli.Command{
			runCommand(), createCommand(), startCommand(), psCommand(), logsCommand(),
			execCommand(), stopCommand(), killCommand(), restartCommand(), waitCommand(),
			rmCommand(), pauseCommand(), unpauseCommand(), updateCommand(), renameCommand(),
			topCommand(), statsCommand(), diffCommand(), cpCommand(), inspectCommand(),
			pullCommand(), pushCommand(), loginCommand(), logoutCommand(), importCommand(),
			saveCommand(), loadCommand(), imagesCommand(), historyCommand(), rmiCommand(),
			tagCommand(), commitCommand(), networkCommand(), volumeCommand(), portCommand(),
			registryCommand(), systemCommand(), completionCommand(),
			monitorCommand(), finishCommand(),
		},
		HideHelpCommand: true,
		CommandNotFound: func(c *cli.Context, name string) {
			fmt.Fprintf(os.Stderr, "gocell: error: unknown command %q (see gocell --help)\n", name)
			os.Exit(2)
		},
		EnableBashCompletion: false,
		ExitErrHandler:       func(*cli.Context, error) {},
		Before: func(c *cli.Context) error {
			if err := requireRoot(c); err != nil {
				return err
			}
			return absoluteRoot(c)
		},
	}
	// -it is -i -t, as in Docker; a bad flag is a usage error (exit 2)
	// with one line, not the whole help text.
	app.UseShortOptionHandling = true
	// One value a flag: -e NO_PROXY=a,b and --tmpfs /t:size=1k,mode=0777
	// keep their commas, as in Docker.
	app.DisableSliceFlagSeparator = true
	app.OnUsageError = onUsageError
	setupCommands(app.Commands)
	if len(args) > 1 && args[1] == completeArg {
		complete(app, args[2:])
		return 0
	}
	if err := app.Run(args); err != nil {
		return report(err)
	}
	return 0
}

// requireRoot stops early, with a clear message, when gocell is not run
// as root: every command but help touches namespaces, mounts or
// root-owned state.
func requireRoot(c *cli.Context) error {
	if os.Geteuid() == 0 || c.Args().Len() == 0 || c.Args().First() == "help" ||
		c.Args().First() == "completion" ||
		c.Bool("help") || contains(c.Args().Slice(), "--help") || contains(c.Args().Slice(), "-h") {
		return nil
	}
	return usageError("gocell must be run as root (it creates namespaces, mounts and cgroups); try: sudo gocell %s", c.Args().First())
}

// absoluteRoot makes --root absolute: the monitor gets it too, and the
// runtime resolves paths under it after changing directory.
func absoluteRoot(c *cli.Context) error {
	root := c.String("root")
	if root == "" {
		return usageError("--root is empty; give a directory, e.g. --root %s", defaultRoot)
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return usageError("--root %s: %v", root, err)
	}
	return c.Set("root", abs)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func init() {
	// Colour only on a terminal; fatih/color honours NO_COLOR itself.
	if !isTerminal(os.Stderr) {
		color.NoColor = true
	}
	// The monitor, and gocell as the shim, run on the main thread, the
	// thread group's leader: each executes another program later
	// (container.RunMonitor, shim.Main), and an execve(2) from any other
	// thread first makes the leader a zombie for a moment, in which the
	// monitor would look dead to `gocell ps` and `rm -f`. Locked here, in
	// an init function, main runs on the thread that started the process
	// (runtime.LockOSThread).
	if contains(os.Args, "__monitor") || len(os.Args) > 1 && os.Args[1] == container.ShimArg {
		runtime.LockOSThread()
	}
}

// printf prints to stdout, for the commands' results.
func printf(format string, args ...any) { fmt.Fprintf(os.Stdout, format, args...) }

// setupCommands applies the app's flag handling to every command and
// subcommand.
func setupCommands(cmds []*cli.Command) {
	for _, cmd := range cmds {
		cmd.UseShortOptionHandling = true
		cmd.OnUsageError = onUsageError
		setupCommands(cmd.Subcommands)
	}
}

// onUsageError turns a flag the command does not know into one line.
func onUsageError(c *cli.Context, err error, _ bool) error {
	return usageError("%s (see %s --help)", err, commandPath(c))
}

// commandPath names the command of c as typed: "gocell", "gocell run",
// "gocell network create". c.Lineage runs from c up to the app, whose
// own context has the app's name or none.
func commandPath(c *cli.Context) string {
	path := []string{}
	for _, ctx := range c.Lineage() {
		if ctx.Command != nil && ctx.Command.Name != "" && ctx.Command.Name != c.App.Name {
			path = append([]string{ctx.Command.Name}, path...)
		}
	}
	return strings.Join(append([]string{c.App.Name}, path...), " ")
}

package main

import (
	"os"

	"github.com/gocell/gocell/final/internal/container"
	"github.com/urfave/cli/v2"
)

func execCommand() *cli.Command {
	return &cli.Command{
		Name:      "exec",
		Usage:     "run a command in a running container",
		ArgsUsage: "CONTAINER COMMAND [ARG...]",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "interactive", Aliases: []string{"i"}, Usage: "keep stdin open"},
			&cli.BoolFlag{Name: "tty", Aliases: []string{"t"}, Usage: "give the command a terminal"},
			&cli.StringSliceFlag{Name: "env", Aliases: []string{"e"}, Usage: "set an environment variable, KEY=VALUE"},
			&cli.StringFlag{Name: "workdir", Aliases: []string{"w"}, Usage: "working directory inside (default: the container's)"},
			&cli.StringFlag{Name: "user", Aliases: []string{"u"}, Usage: "user inside: UID[:GID] or NAME (default: the container's)"},
		},
		Action: func(c *cli.Context) error {
			if err := needArgs(c, 2, "which container, and which command?"); err != nil {
				return err
			}
			if err := checkWorkdir(c.String("workdir")); err != nil {
				return err
			}
			containers, err := containerStore(c)
			if err != nil {
				return err
			}
			opts := container.ExecOptions{
				Args: c.Args().Tail(), Env: c.StringSlice("env"), Dir: c.String("workdir"),
				User: c.String("user"), Tty: c.Bool("tty"),
				Stdio: [3]*os.File{os.Stdin, os.Stdout, os.Stderr},
			}
			if !c.Bool("interactive") && !c.Bool("tty") {
				devnull, err := os.Open(os.DevNull)
				if err != nil {
					return err
				}
				defer devnull.Close()
				opts.Stdio[0] = devnull
			}
			if c.Bool("tty") {
				if !isTerminal(os.Stdin) {
					return usageError("-t: stdin is not a terminal")
				}
				term, err := openTerminal()
				if err != nil {
					return err
				}
				opts.Console, opts.Rows, opts.Cols = term.peer, term.rows, term.cols
				term.relay()
				code, err := containers.Exec(c.Args().First(), opts)
				term.Close()
				if err != nil {
					return err
				}
				return exitCode(code)
			}
			code, err := containers.Exec(c.Args().First(), opts)
			if err != nil {
				return err
			}
			return exitCode(code)
		},
	}
}

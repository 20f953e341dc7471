package main

import (
	"os"

	"github.com/gocell/gocell/final/internal/container"
	"github.com/urfave/cli/v2"
)

func runCommand() *cli.Command {
	flags := append(containerFlags(), &cli.BoolFlag{Name: "detach", Aliases: []string{"d"},
		Usage: "run in the background and print the container's id"})
	return &cli.Command{
		Name:      "run",
		Usage:     "create a container from an image and start it",
		ArgsUsage: "IMAGE [COMMAND [ARG...]]",
		Flags:     flags,
		Action: func(c *cli.Context) error {
			detach := c.Bool("detach")
			// With -d the terminal is one the monitor makes (-dit keeps
			// a shell running in the background); in the foreground it
			// is the user's, relayed.
			if c.Bool("tty") && !detach && !isTerminal(os.Stdin) {
				return usageError("-t: stdin is not a terminal; run from a terminal, or add -d")
			}
			st, err := createContainer(c)
			if err != nil {
				return err
			}
			containers, err := containerStore(c)
			if err != nil {
				return err
			}
			if detach {
				if _, err := containers.Start(st.ID, nil); err != nil {
					return err
				}
				printf("%s\n", st.ID)
				return nil
			}
			return startAttached(containers, st, c.Bool("tty"))
		},
	}
}

// startAttached starts a container with the CLI's stdio (or a terminal of
// its own with -t) and exits with its status.
func startAttached(containers *container.Store, st *container.State, tty bool) error {
	attach := &container.Attach{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr}
	if tty {
		term, err := openTerminal()
		if err != nil {
			return err
		}
		defer term.Close()
		attach = term.attach()
		started, err := containers.Start(st.ID, attach)
		if err != nil {
			return err
		}
		// The monitor has its copy: ours would keep the socket open.
		term.peer.Close()
		term.relay()
		return exitCode(started.Wait())
	}
	started, err := containers.Start(st.ID, attach)
	if err != nil {
		return err
	}
	return exitCode(started.Wait())
}

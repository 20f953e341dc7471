package main

import (
	"fmt"
	"os"
	"strconv"

	"github.com/gocell/gocell/final/internal/container"
	"github.com/urfave/cli/v2"
)

// monitorCommand is the hidden `gocell __monitor ID`, which Start spawns
// to look after a running container.
func monitorCommand() *cli.Command {
	return &cli.Command{
		Name:   "__monitor",
		Hidden: true,
		Flags: []cli.Flag{&cli.BoolFlag{Name: "attached"},
			&cli.BoolFlag{Name: "restarted", Usage: "a start of the restart policy"},
			&cli.StringFlag{Name: "console-size", Usage: "ROWSxCOLS of the attached terminal"},
			&cli.StringFlag{Name: "shim", Usage: "the gocell-shim to hand a detached container over to (default: gocell __shim)"}},
		Action: func(c *cli.Context) error {
			containers, err := containerStore(c)
			if err != nil {
				return err
			}
			var o container.MonitorOptions
			o.Attached = c.Bool("attached")
			o.Shim = c.String("shim")
			o.Restarted = c.Bool("restarted")
			fmt.Sscanf(c.String("console-size"), "%dx%d", &o.Rows, &o.Cols)
			container.RunMonitor(containers, c.Args().First(), o)
			return nil
		},
	}
}

// finishCommand is the hidden `gocell __finish ID CODE`, which the shim
// executes once a detached container has ended: the monitor's clean-up,
// in the monitor's process (see final/internal/shim).
func finishCommand() *cli.Command {
	return &cli.Command{
		Name:   "__finish",
		Hidden: true,
		Action: func(c *cli.Context) error {
			containers, err := containerStore(c)
			if err != nil {
				// The clean-up must happen whatever was done to the
				// configuration file since the container started.
				fmt.Fprintf(os.Stderr, "gocell: __finish: %v; cleaning up without it\n", err)
				if containers, err = container.Open(c.String("root")); err != nil {
					return err
				}
			}
			code, err := strconv.Atoi(c.Args().Get(1))
			if err != nil {
				code = container.ExitRuntime
			}
			container.RunFinish(containers, c.Args().First(), code)
			return nil
		},
	}
}

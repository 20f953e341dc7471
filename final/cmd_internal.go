package main

import (
	"fmt"

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
			&cli.StringFlag{Name: "console-size", Usage: "ROWSxCOLS of the attached terminal"}},
		Action: func(c *cli.Context) error {
			containers, err := containerStore(c)
			if err != nil {
				return err
			}
			var o container.MonitorOptions
			o.Attached = c.Bool("attached")
			fmt.Sscanf(c.String("console-size"), "%dx%d", &o.Rows, &o.Cols)
			container.RunMonitor(containers, c.Args().First(), o)
			return nil
		},
	}
}

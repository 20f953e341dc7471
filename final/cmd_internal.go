package main

import (
	"github.com/gocell/gocell/final/internal/container"
	"github.com/urfave/cli/v2"
)

// monitorCommand is the hidden `gocell __monitor ID`, which Start spawns
// to look after a running container.
func monitorCommand() *cli.Command {
	return &cli.Command{
		Name:   "__monitor",
		Hidden: true,
		Flags:  []cli.Flag{&cli.BoolFlag{Name: "attached"}},
		Action: func(c *cli.Context) error {
			containers, err := containerStore(c)
			if err != nil {
				return err
			}
			container.RunMonitor(containers, c.Args().First(), c.Bool("attached"))
			return nil
		},
	}
}

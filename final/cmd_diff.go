package main

import (
	"github.com/urfave/cli/v2"
)

// diffCommand is docker diff: what the container changed in its file
// system, from its writable layer (A added, C changed, D deleted).
func diffCommand() *cli.Command {
	return &cli.Command{
		Name:      "diff",
		Usage:     "list the files a container added (A), changed (C) or deleted (D)",
		ArgsUsage: "CONTAINER",
		Action: func(c *cli.Context) error {
			if err := needArgs(c, 1, "which container?"); err != nil {
				return err
			}
			containers, err := containerStore(c)
			if err != nil {
				return err
			}
			changes, err := containers.Diff(c.Args().First())
			if err != nil {
				return err
			}
			for _, ch := range changes {
				printf("%c %s\n", ch.Kind, ch.Path)
			}
			return nil
		},
	}
}

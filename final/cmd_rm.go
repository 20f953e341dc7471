package main

import (
	"github.com/gocell/gocell/final/internal/container"
	"github.com/urfave/cli/v2"
)

func rmCommand() *cli.Command {
	return &cli.Command{
		Name:      "rm",
		Usage:     "remove containers and their writable layers",
		ArgsUsage: "CONTAINER...",
		Flags: []cli.Flag{&cli.BoolFlag{Name: "force", Aliases: []string{"f"},
			Usage: "kill a running container first"}},
		Action: func(c *cli.Context) error {
			return forEach(c, func(s *container.Store, ref string) (*container.State, error) {
				return s.Remove(ref, c.Bool("force"))
			})
		},
	}
}

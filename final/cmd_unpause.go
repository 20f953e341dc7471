package main

import (
	"github.com/gocell/gocell/final/internal/container"
	"github.com/urfave/cli/v2"
)

func unpauseCommand() *cli.Command {
	return &cli.Command{
		Name:      "unpause",
		Usage:     "thaw paused containers",
		ArgsUsage: "CONTAINER...",
		Action: func(c *cli.Context) error {
			return forEach(c, (*container.Store).Unpause)
		},
	}
}

package main

import (
	"github.com/gocell/gocell/final/internal/container"
	"github.com/urfave/cli/v2"
)

func pauseCommand() *cli.Command {
	return &cli.Command{
		Name:      "pause",
		Usage:     "freeze every process of containers (cgroup freezer)",
		ArgsUsage: "CONTAINER...",
		Action: func(c *cli.Context) error {
			return forEach(c, (*container.Store).Pause)
		},
	}
}

package main

import (
	"os"

	"github.com/urfave/cli/v2"
)

func logsCommand() *cli.Command {
	return &cli.Command{
		Name:      "logs",
		Usage:     "show a container's output (-f: follow it)",
		ArgsUsage: "CONTAINER",
		Flags:     []cli.Flag{&cli.BoolFlag{Name: "follow", Aliases: []string{"f"}, Usage: "go on until the container stops"}},
		Action: func(c *cli.Context) error {
			if err := needArgs(c, 1, "which container?"); err != nil {
				return err
			}
			containers, err := containerStore(c)
			if err != nil {
				return err
			}
			return containers.Logs(c.Args().First(), c.Bool("follow"), os.Stdout, os.Stderr)
		},
	}
}

package main

import (
	"github.com/urfave/cli/v2"
)

func pullCommand() *cli.Command {
	return &cli.Command{
		Name:      "pull",
		Usage:     "pull an image from a registry (Docker Hub by default)",
		ArgsUsage: "NAME[:TAG|@DIGEST]",
		Action: func(c *cli.Context) error {
			if err := needArgs(c, 1, "which image?"); err != nil {
				return err
			}
			images, _, err := stores(c)
			if err != nil {
				return err
			}
			opts, err := pullOptions(c)
			if err != nil {
				return err
			}
			img, err := images.Pull(c.Context, c.Args().First(), opts)
			if err != nil {
				return err
			}
			printf("%s\n", img.ID)
			return nil
		},
	}
}

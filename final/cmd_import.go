package main

import (
	"github.com/urfave/cli/v2"
)

func importCommand() *cli.Command {
	return &cli.Command{
		Name:      "import",
		Usage:     "import images from a docker save archive or an OCI image layout",
		ArgsUsage: "FILE [NAME:TAG]",
		Action: func(c *cli.Context) error {
			if err := needArgs(c, 1, "which file?"); err != nil {
				return err
			}
			images, _, err := stores(c)
			if err != nil {
				return err
			}
			imported, err := images.Import(c.Context, c.Args().First(), c.Args().Get(1))
			if err != nil {
				return err
			}
			for _, img := range imported {
				printf("%s\n", img.ID)
			}
			return nil
		},
	}
}

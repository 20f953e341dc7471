package main

import (
	"github.com/urfave/cli/v2"
)

func tagCommand() *cli.Command {
	return &cli.Command{
		Name:      "tag",
		Usage:     "give an image another name",
		ArgsUsage: "SOURCE TARGET",
		Action: func(c *cli.Context) error {
			if err := needArgs(c, 2, "which image, and which new name?"); err != nil {
				return err
			}
			images, _, err := stores(c)
			if err != nil {
				return err
			}
			return images.Tag(c.Args().Get(0), c.Args().Get(1))
		},
	}
}

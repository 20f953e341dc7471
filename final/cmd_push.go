package main

import (
	"os"

	"github.com/gocell/gocell/final/internal/image"

	"github.com/urfave/cli/v2"
)

// pushCommand is docker push: a stored image to the registry its name
// says, with a line (or bar) per layer on stderr, and its digest after.
func pushCommand() *cli.Command {
	return &cli.Command{
		Name:      "push",
		Usage:     "push an image to a registry (the one its name says; gocell tag names it)",
		ArgsUsage: "NAME[:TAG]",
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
			digest, err := images.Push(c.Context, c.Args().First(),
				image.PushOptions{Progress: os.Stderr, Timeout: opts.Timeout})
			if err != nil {
				return err
			}
			printf("%s\n", digest)
			return nil
		},
	}
}

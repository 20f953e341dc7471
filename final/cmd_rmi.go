package main

import (
	"fmt"

	"github.com/urfave/cli/v2"
)

func rmiCommand() *cli.Command {
	return &cli.Command{
		Name:      "rmi",
		Usage:     "remove images (refused while a container uses one, unless -f)",
		ArgsUsage: "IMAGE...",
		Flags:     []cli.Flag{&cli.BoolFlag{Name: "force", Aliases: []string{"f"}, Usage: "remove it even if containers use it"}},
		Action: func(c *cli.Context) error {
			if err := needArgs(c, 1, "which image?"); err != nil {
				return err
			}
			images, containers, err := stores(c)
			if err != nil {
				return err
			}
			all, err := containers.List()
			if err != nil {
				return err
			}
			for _, ref := range c.Args().Slice() {
				img, err := images.Get(ref)
				if err != nil {
					return err
				}
				if !c.Bool("force") {
					for _, st := range all {
						if st.Spec.ImageID == img.ID {
							return fmt.Errorf("image %s is used by container %s; remove the container first, or use rmi -f", ref, describe(st))
						}
					}
				}
				if err := images.Remove(ref); err != nil {
					return err
				}
				printf("Untagged: %s\n", ref)
			}
			return nil
		},
	}
}

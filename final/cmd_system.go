package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/gocell/gocell/final/internal/container"
	"github.com/urfave/cli/v2"
)

func systemCommand() *cli.Command {
	return &cli.Command{
		Name:  "system",
		Usage: "clean up: prune what is unused, or reset everything",
		Subcommands: []*cli.Command{
			{
				Name:  "prune",
				Usage: "remove stopped containers, unused networks and dangling images",
				Action: func(c *cli.Context) error {
					images, containers, err := stores(c)
					if err != nil {
						return err
					}
					if err := containers.RemoveUnfinished(); err != nil {
						return err
					}
					all, err := containers.List()
					if err != nil {
						return err
					}
					for _, st := range all {
						if st.Status == container.Stopped || st.Status == container.Created {
							if _, err := containers.Remove(st.ID, false); err != nil {
								return err
							}
							printf("deleted container %s\n", st.Name)
						}
					}
					nm, err := containers.Networks()
					if err != nil {
						return err
					}
					if err := nm.Prune(); err != nil {
						return err
					}
					left, err := containers.List()
					if err != nil {
						return err
					}
					list, err := images.List()
					if err != nil {
						return err
					}
					for _, img := range list {
						if len(img.RepoTags) > 0 || len(usedBy(left, func(s container.Spec) bool { return s.ImageID == img.ID })) > 0 {
							continue
						}
						if err := images.Remove(img.ID); err != nil {
							return err
						}
						printf("deleted image %s\n", img.ShortID())
					}
					return nil
				},
			},
			{
				Name:  "reset",
				Usage: "remove everything gocell made: containers, networks, firewall rules, volumes, images",
				Flags: []cli.Flag{&cli.BoolFlag{Name: "force", Aliases: []string{"f"}, Usage: "do it (nothing happens without it)"}},
				Action: func(c *cli.Context) error {
					root := c.String("root")
					if !c.Bool("force") {
						return usageError("system reset removes every container, image, volume and network under %s; run it with --force", root)
					}
					containers, err := containerStore(c)
					if err != nil {
						return err
					}
					all, err := containers.List()
					if err != nil {
						return err
					}
					for _, st := range all {
						if _, err := containers.Remove(st.ID, true); err != nil {
							return err
						}
					}
					nm, err := containers.Networks()
					if err != nil {
						return err
					}
					if err := nm.Reset(); err != nil {
						return err
					}
					entries, err := os.ReadDir(root)
					if err != nil {
						return err
					}
					for _, e := range entries {
						if err := os.RemoveAll(filepath.Join(root, e.Name())); err != nil {
							return fmt.Errorf("reset: %w", err)
						}
					}
					printf("removed %d containers and everything under %s\n", len(all), root)
					return nil
				},
			},
		},
	}
}

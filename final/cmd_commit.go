package main

import (
	"path/filepath"

	"github.com/gocell/gocell/final/internal/container"
	"github.com/gocell/gocell/final/internal/image"
	"github.com/urfave/cli/v2"
)

func commitCommand() *cli.Command {
	return &cli.Command{
		Name:      "commit",
		Usage:     "make a new image from a container's changes",
		ArgsUsage: "CONTAINER NAME:TAG",
		Flags: []cli.Flag{&cli.BoolFlag{Name: "pause", Aliases: []string{"p"}, Value: true,
			Usage: "freeze a running container while its changes are copied (--pause=false: do not)"}},
		Action: func(c *cli.Context) error {
			if err := needArgs(c, 2, "which container, and which image name?"); err != nil {
				return err
			}
			images, containers, err := stores(c)
			if err != nil {
				return err
			}
			st, err := containers.Get(c.Args().Get(0))
			if err != nil {
				return err
			}
			if st.Spec.UserNS {
				// Its files belong to uid 100000 and up on disk; a layer
				// made of them would need its ids shifted back.
				return usageError("commit of a --userns container is not supported yet")
			}
			base, err := images.Get(st.Spec.ImageID)
			if err != nil {
				return err
			}
			cfg := base.Config
			cfg.Env = st.Spec.Env
			var img *image.Image
			commit := func(st *container.State, upper string) error {
				img, err = images.Commit(base, upper, c.Args().Get(1), image.Config(cfg))
				return err
			}
			if c.Bool("pause") {
				err = containers.Frozen(st.ID, commit)
			} else {
				err = commit(st, filepath.Join(containers.Dir(st.ID), "upper"))
			}
			if err != nil {
				return err
			}
			printf("%s\n", img.ID)
			return nil
		},
	}
}

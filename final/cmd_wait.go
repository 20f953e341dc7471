package main

import (
	"errors"

	"github.com/gocell/gocell/final/internal/container"
	"github.com/urfave/cli/v2"
)

// waitCommand is docker wait: block until containers stop, and print
// each one's exit code.
func waitCommand() *cli.Command {
	return &cli.Command{
		Name:      "wait",
		Usage:     "wait until containers stop, and print their exit codes",
		ArgsUsage: "CONTAINER...",
		Action: func(c *cli.Context) error {
			if err := needArgs(c, 1, "which container?"); err != nil {
				return err
			}
			containers, err := containerStore(c)
			if err != nil {
				return err
			}
			for _, ref := range c.Args().Slice() {
				st, err := containers.Wait(c.Context, ref)
				if err != nil {
					return err
				}
				printf("%d\n", st.ExitCode)
			}
			return nil
		},
	}
}

// renameCommand is docker rename.
func renameCommand() *cli.Command {
	return &cli.Command{
		Name:      "rename",
		Usage:     "give a container another name",
		ArgsUsage: "CONTAINER NEW_NAME",
		Action: func(c *cli.Context) error {
			if c.Args().Len() != 2 {
				return usageError("rename: give the container and its new name (see gocell rename --help)")
			}
			containers, err := containerStore(c)
			if err != nil {
				return err
			}
			_, err = containers.Rename(c.Args().Get(0), c.Args().Get(1))
			if err != nil && errors.Is(err, container.ErrInvalidName) {
				return usageError("%s", err)
			}
			return err
		},
	}
}

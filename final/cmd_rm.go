package main

import (
	"fmt"
	"os"

	"github.com/gocell/gocell/final/internal/container"
	"github.com/urfave/cli/v2"
)

func rmCommand() *cli.Command {
	return &cli.Command{
		Name:      "rm",
		Usage:     "remove containers and their writable layers",
		ArgsUsage: "CONTAINER...",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "force", Aliases: []string{"f"}, Usage: "kill a running container first"},
			&cli.BoolFlag{Name: "volumes", Aliases: []string{"v"},
				Usage: "also remove its named volumes, unless another container uses them"},
		},
		Action: func(c *cli.Context) error {
			return forEach(c, func(s *container.Store, ref string) (*container.State, error) {
				st, err := s.Remove(ref, c.Bool("force"))
				if err != nil || !c.Bool("volumes") {
					return st, err
				}
				return st, removeVolumesOf(s, st)
			})
		},
	}
}

// removeVolumesOf removes the named volumes of a removed container that
// no other container uses, and says which it keeps.
func removeVolumesOf(containers *container.Store, st *container.State) error {
	inUse, err := volumesInUse(containers, st.ID)
	if err != nil {
		return err
	}
	vols, err := containers.Volumes()
	if err != nil {
		return err
	}
	for _, m := range st.Spec.Mounts {
		if !m.Named {
			continue
		}
		if inUse[m.Source] {
			fmt.Fprintf(os.Stderr, "gocell: kept volume %s: another container uses it\n", m.Source)
			continue
		}
		if err := vols.Remove(m.Source, false); err != nil {
			return err
		}
	}
	return nil
}

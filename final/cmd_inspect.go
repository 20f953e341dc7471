package main

import (
	"encoding/json"
	"os"

	"github.com/gocell/gocell/final/internal/container"
	"github.com/urfave/cli/v2"
)

func inspectCommand() *cli.Command {
	return &cli.Command{
		Name:      "inspect",
		Usage:     "show containers' state as JSON",
		ArgsUsage: "CONTAINER...",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "spec", Usage: "show the OCI runtime spec (config.json) of the container's last start instead"},
		},
		Action: func(c *cli.Context) error {
			if err := needArgs(c, 1, "which container?"); err != nil {
				return err
			}
			containers, err := containerStore(c)
			if err != nil {
				return err
			}
			if c.Bool("spec") {
				for _, ref := range c.Args().Slice() {
					data, err := containers.ReadSpec(ref)
					if err != nil {
						return err
					}
					os.Stdout.Write(data)
				}
				return nil
			}
			var out []*container.State
			for _, ref := range c.Args().Slice() {
				st, err := containers.Get(ref)
				if err != nil {
					return err
				}
				out = append(out, st)
			}
			enc := json.NewEncoder(os.Stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(out)
		},
	}
}

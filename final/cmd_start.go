package main

import (
	"os"

	"github.com/urfave/cli/v2"
)

func startCommand() *cli.Command {
	return &cli.Command{
		Name:      "start",
		Usage:     "start created or stopped containers",
		ArgsUsage: "CONTAINER...",
		Flags: []cli.Flag{&cli.BoolFlag{Name: "attach", Aliases: []string{"a"},
			Usage: "stay attached and exit with the container's status (one container)"}},
		Action: func(c *cli.Context) error {
			if err := needArgs(c, 1, "which container?"); err != nil {
				return err
			}
			containers, err := containerStore(c)
			if err != nil {
				return err
			}
			if c.Bool("attach") {
				if c.Args().Len() != 1 {
					return usageError("start -a: one container at a time")
				}
				st, err := containers.Get(c.Args().First())
				if err != nil {
					return err
				}
				if st.Spec.Tty && !isTerminal(os.Stdin) {
					return usageError("start -a: %s has a terminal (-t) and stdin "+
						"is not one; run from a terminal, or start it without -a", st.Name)
				}
				return startAttached(containers, st, st.Spec.Tty)
			}
			for _, ref := range c.Args().Slice() {
				started, err := containers.Start(ref, nil)
				if err != nil {
					return err
				}
				printf("%s\n", started.State.Name)
			}
			return nil
		},
	}
}

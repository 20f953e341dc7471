package main

import (
	"github.com/urfave/cli/v2"
)

func portCommand() *cli.Command {
	return &cli.Command{
		Name:      "port",
		Usage:     "list a container's published ports",
		ArgsUsage: "CONTAINER",
		Action: func(c *cli.Context) error {
			if err := needArgs(c, 1, "which container?"); err != nil {
				return err
			}
			containers, err := containerStore(c)
			if err != nil {
				return err
			}
			st, err := containers.Get(c.Args().First())
			if err != nil {
				return err
			}
			for _, p := range st.Spec.Ports {
				host := p.HostIP
				if host == "" {
					host = "0.0.0.0"
				}
				printf("%d/%s -> %s:%d\n", p.ContainerPort, p.Proto, host, p.HostPort)
			}
			return nil
		},
	}
}

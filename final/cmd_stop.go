package main

import (
	"time"

	"github.com/gocell/gocell/final/internal/container"
	"github.com/urfave/cli/v2"
)

func stopCommand() *cli.Command {
	return &cli.Command{
		Name:      "stop",
		Usage:     "stop containers: SIGTERM, then SIGKILL after a timeout",
		ArgsUsage: "CONTAINER...",
		Flags: []cli.Flag{&cli.IntFlag{Name: "time", Aliases: []string{"t"}, Value: 10,
			Usage: "seconds to wait for the container to stop before killing it (default: its --stop-timeout, or 10)"}},
		Action: func(c *cli.Context) error {
			if c.Int("time") < 0 {
				return usageError("stop -t %d: the timeout cannot be negative", c.Int("time"))
			}
			timeout := time.Duration(c.Int("time")) * time.Second
			if !c.IsSet("time") {
				timeout = -1 // the container's --stop-timeout, or 10 s
			}
			return forEach(c, func(s *container.Store, ref string) (*container.State, error) {
				return s.Stop(ref, timeout)
			})
		},
	}
}

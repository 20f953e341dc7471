package main

import (
	"github.com/gocell/gocell/final/internal/container"
	"github.com/gocell/gocell/final/internal/oci"
	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"
)

func killCommand() *cli.Command {
	return &cli.Command{
		Name:      "kill",
		Usage:     "send a signal to containers (default SIGKILL)",
		ArgsUsage: "CONTAINER...",
		Flags: []cli.Flag{&cli.StringFlag{Name: "signal", Aliases: []string{"s"}, Value: "KILL",
			Usage: "signal name (TERM, SIGHUP, …) or number"}},
		Action: func(c *cli.Context) error {
			sig, err := parseSignal(c.String("signal"))
			if err != nil {
				return err
			}
			return forEach(c, func(s *container.Store, ref string) (*container.State, error) {
				return s.Kill(ref, sig)
			})
		},
	}
}

// parseSignal reads "KILL", "SIGKILL", "kill" or "9", as gocell-runtime
// does.
func parseSignal(s string) (unix.Signal, error) {
	sig, err := oci.ParseSignal(s)
	if err != nil {
		return 0, usageError("kill -s %q: not a signal; use a name such as TERM or a number such as 15", s)
	}
	return sig, nil
}

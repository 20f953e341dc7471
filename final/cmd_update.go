package main

import (
	"github.com/gocell/gocell/final/internal/container"
	"github.com/urfave/cli/v2"
)

// updateCommand is docker update: new limits for containers. A running
// one's cgroup takes them at once (the runtime's update writes its files);
// a stopped one keeps them for its next start.
func updateCommand() *cli.Command {
	return &cli.Command{
		Name:      "update",
		Usage:     "change the limits of containers, running or not",
		ArgsUsage: "CONTAINER...",
		Flags:     resourceFlags(),
		Action: func(c *cli.Context) error {
			given := false
			for _, f := range resourceFlags() {
				given = given || c.IsSet(f.Names()[0])
			}
			if !given {
				return usageError("update: give a limit to change, such as --memory 64M or --cpuset-cpus 0")
			}
			// A bad flag fails on the first container, before it changes.
			return forEach(c, func(s *container.Store, ref string) (*container.State, error) {
				return s.UpdateResources(ref, func(res *container.Resources) error {
					return applyResources(c, res)
				})
			})
		},
	}
}

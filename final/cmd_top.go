package main

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"

	"github.com/gocell/gocell/final/internal/cgroups"
	"github.com/gocell/gocell/final/internal/container"
	"github.com/urfave/cli/v2"
)

// topCommand is docker top: ps(1) on the host, for the processes of the
// container's cgroup, with the host's pids.
func topCommand() *cli.Command {
	return &cli.Command{
		Name:            "top",
		Usage:           "show a container's processes, as ps(1) on the host sees them (ps options after it; default -f)",
		ArgsUsage:       "CONTAINER [PS OPTIONS]",
		SkipFlagParsing: true,
		Action: func(c *cli.Context) error {
			args := c.Args().Slice()
			if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
				if len(args) == 0 {
					return usageError("top: which container? (see gocell top --help)")
				}
				return cli.ShowSubcommandHelp(c)
			}
			containers, err := containerStore(c)
			if err != nil {
				return err
			}
			st, err := containers.Get(args[0])
			if err != nil {
				return err
			}
			if st.Status != container.Running && st.Status != container.Paused {
				return fmt.Errorf("%w: %s is %s", container.ErrNotRunning, st.Name, st.Status)
			}
			pids, err := cgroups.Load(st.Cgroup).Pids()
			if err != nil {
				return err
			}
			opts := args[1:]
			if len(opts) == 0 {
				opts = []string{"-f"}
			}
			list := make([]string, len(pids))
			for i, p := range pids {
				list[i] = strconv.Itoa(p)
			}
			cmd := exec.Command("ps", append(opts, "-p", strings.Join(list, ","))...)
			cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
			if err := cmd.Run(); err != nil {
				return fmt.Errorf("ps %s: %w", strings.Join(opts, " "), err)
			}
			return nil
		},
	}
}

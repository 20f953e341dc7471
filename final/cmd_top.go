package main

import (
	"fmt"
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
		Usage:           "show a container's processes, as ps(1) on the host sees them (ps options after it; default -ef)",
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
			out, err := psFor(pids, args[1:])
			if err != nil {
				return err
			}
			printf("%s", out)
			return nil
		},
	}
}

// psFor runs ps(1) with opts (default -ef) and keeps its header and the
// lines of pids, found by the PID column, as Docker's top does: so it
// works with any ps, procps's or busybox's, which has no -p.
func psFor(pids []int, opts []string) (string, error) {
	user := len(opts) > 0
	if !user {
		opts = []string{"-ef"}
	}
	out, err := exec.Command("ps", opts...).Output()
	if err != nil && !user {
		out, err = exec.Command("ps").Output() // busybox's knows no -ef
	}
	if err != nil {
		return "", fmt.Errorf("ps %s: %w", strings.Join(opts, " "), err)
	}
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	col := -1
	for i, h := range strings.Fields(lines[0]) {
		if h == "PID" {
			col = i
		}
	}
	if col < 0 {
		return "", fmt.Errorf("ps %s: no PID column to find the container's processes by (add -o pid,...)",
			strings.Join(opts, " "))
	}
	want := map[string]bool{}
	for _, p := range pids {
		want[strconv.Itoa(p)] = true
	}
	keep := []string{lines[0]}
	for _, l := range lines[1:] {
		if f := strings.Fields(l); len(f) > col && want[f[col]] {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n") + "\n", nil
}

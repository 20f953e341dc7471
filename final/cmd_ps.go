package main

import (
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/gocell/gocell/final/internal/container"
	"github.com/urfave/cli/v2"
)

func psCommand() *cli.Command {
	return &cli.Command{
		Name:  "ps",
		Usage: "list running containers (-a: all)",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "all", Aliases: []string{"a"}, Usage: "stopped and created ones too"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "ids only"},
		},
		Action: func(c *cli.Context) error {
			containers, err := containerStore(c)
			if err != nil {
				return err
			}
			all, err := containers.List()
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(os.Stdout, 0, 8, 3, ' ', 0)
			if !c.Bool("quiet") {
				fmt.Fprintln(w, "CONTAINER ID\tIMAGE\tCOMMAND\tCREATED\tSTATUS\tNAMES")
			}
			for _, st := range all {
				if !c.Bool("all") && st.Status != container.Running && st.Status != container.Paused {
					continue
				}
				if c.Bool("quiet") {
					fmt.Fprintln(w, shortID(st.ID))
					continue
				}
				cmd := strings.Join(st.Spec.Args, " ")
				if len(cmd) > 22 {
					cmd = cmd[:19] + "..."
				}
				fmt.Fprintf(w, "%s\t%s\t%q\t%s\t%s\t%s\n", shortID(st.ID), st.Spec.Image, cmd,
					ago(st.Created)+" ago", status(st), st.Name)
			}
			return w.Flush()
		},
	}
}

// status is a container's status as Docker words it.
func status(st *container.State) string {
	switch st.Status {
	case container.Running:
		return "Up " + ago(st.StartedAt)
	case container.Paused:
		return "Up " + ago(st.StartedAt) + " (Paused)"
	case container.Stopped:
		return fmt.Sprintf("Exited (%d) %s ago", st.ExitCode, ago(st.FinishedAt))
	}
	return "Created"
}

// ago is a duration in words: "3 seconds", "2 minutes".
func ago(t time.Time) string {
	d := time.Since(t)
	switch {
	case d < 2*time.Second:
		return "1 second"
	case d < 2*time.Minute:
		return fmt.Sprintf("%d seconds", int(d.Seconds()))
	case d < 2*time.Hour:
		return fmt.Sprintf("%d minutes", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d hours", int(d.Hours()))
	}
	return fmt.Sprintf("%d days", int(d.Hours()/24))
}

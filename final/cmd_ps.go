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

// psRow is a container as ps --format sees it: Docker's fields.
type psRow struct {
	ID, Image, Command, CreatedAt, RunningFor, Status, State, Names, Ports, Networks string
	Pid                                                                              int
}

// psHeaders name ps's columns in a --format table, as Docker's.
var psHeaders = map[string]string{"ID": "CONTAINER ID", "RunningFor": "CREATED", "CreatedAt": "CREATED AT", "Names": "NAMES"}

func psCommand() *cli.Command {
	return &cli.Command{
		Name:  "ps",
		Usage: "list running containers (-a: all)",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "all", Aliases: []string{"a"}, Usage: "stopped and created ones too"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "ids only"},
			&cli.BoolFlag{Name: "no-trunc", Usage: "whole ids and commands"},
			formatFlag("container (.ID .Image .Command .CreatedAt .RunningFor .Status .State .Names .Ports .Networks .Pid)"),
		},
		Action: func(c *cli.Context) error {
			var f *format
			if c.IsSet("format") {
				var err error
				if f, err = parseFormat(c.String("format"), psHeaders); err != nil {
					return err
				}
			}
			containers, err := containerStore(c)
			if err != nil {
				return err
			}
			all, err := containers.List()
			if err != nil {
				return err
			}
			full := c.Bool("no-trunc")
			var rows []any
			w := tabwriter.NewWriter(os.Stdout, 0, 8, 3, ' ', 0)
			if !c.Bool("quiet") && f == nil {
				fmt.Fprintln(w, "CONTAINER ID\tIMAGE\tCOMMAND\tCREATED\tSTATUS\tNAMES")
			}
			for _, st := range all {
				if !c.Bool("all") && st.Status != container.Running && st.Status != container.Paused {
					continue
				}
				id := st.ID
				if !full {
					id = shortID(id)
				}
				if c.Bool("quiet") {
					fmt.Fprintln(w, id)
					continue
				}
				cmd := strings.Join(st.Spec.Args, " ")
				if len(cmd) > 22 && !full {
					cmd = cmd[:19] + "..."
				}
				if f != nil {
					var ports []string
					for _, p := range st.Spec.Ports {
						ports = append(ports, p.String())
					}
					rows = append(rows, psRow{ID: id, Image: st.Spec.Image, Command: fmt.Sprintf("%q", cmd),
						CreatedAt:  st.Created.Local().Format("2006-01-02 15:04:05 -0700 MST"),
						RunningFor: ago(st.Created) + " ago", Status: status(st), State: string(st.Status),
						Names: st.Name, Ports: strings.Join(ports, ", "), Networks: st.Spec.Network, Pid: st.Pid})
					continue
				}
				fmt.Fprintf(w, "%s\t%s\t%q\t%s\t%s\t%s\n", id, st.Spec.Image, cmd,
					ago(st.Created)+" ago", status(st), st.Name)
			}
			if f != nil && !c.Bool("quiet") {
				return f.render(os.Stdout, rows)
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

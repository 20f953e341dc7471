package main

import (
	"errors"
	"os"
	"strconv"
	"time"

	"github.com/gocell/gocell/final/internal/container"
	"github.com/urfave/cli/v2"
)

func logsCommand() *cli.Command {
	return &cli.Command{
		Name:      "logs",
		Usage:     "show a container's output (-f: follow it)",
		ArgsUsage: "CONTAINER",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "follow", Aliases: []string{"f"}, Usage: "go on until the container stops"},
			&cli.StringFlag{Name: "tail", Aliases: []string{"n"}, Value: "all", Usage: "only the last N lines so far (all: every line)"},
			&cli.StringFlag{Name: "since", Usage: "only lines logged since a time (2026-12-06T10:00:00Z, or 2026-12-06) or for a while (10m, 1h30m)"},
			&cli.BoolFlag{Name: "timestamps", Aliases: []string{"t"}, Usage: "the time each line was logged, before it"},
		},
		Action: func(c *cli.Context) error {
			if err := needArgs(c, 1, "which container?"); err != nil {
				return err
			}
			o := container.LogOptions{Follow: c.Bool("follow"), Tail: -1, Timestamps: c.Bool("timestamps")}
			if t := c.String("tail"); t != "all" {
				n, err := strconv.Atoi(t)
				if err != nil || n < 0 {
					return usageError("--tail %q: a number of lines, or all", t)
				}
				o.Tail = n
			}
			if s := c.String("since"); s != "" {
				t, err := parseSince(s, time.Now())
				if err != nil {
					return usageError("--since %q: %v", s, err)
				}
				o.Since = t
			}
			containers, err := containerStore(c)
			if err != nil {
				return err
			}
			return containers.Logs(c.Args().First(), o, os.Stdout, os.Stderr)
		},
	}
}

// parseSince reads --since as Docker does: a duration back from now, a
// time in RFC 3339 (with or without the zone and the seconds' fraction),
// a date, or Unix seconds.
func parseSince(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return time.Time{}, errors.New("a duration back from now cannot be negative")
		}
		return now.Add(-d), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, nil
		}
	}
	if secs, err := strconv.ParseFloat(s, 64); err == nil && secs >= 0 {
		return time.Unix(0, int64(secs*1e9)), nil
	}
	return time.Time{}, errors.New("not a time (2026-12-06T10:00:00Z, 2026-12-06) or a duration (10m)")
}

package main

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/gocell/gocell/final/internal/container"
	"github.com/urfave/cli/v2"
)

// statsRow is a container as stats --format sees it: Docker's fields.
type statsRow struct {
	ID, Name, CPUPerc, MemUsage, MemPerc, NetIO, PIDs string
}

// statsHeaders name stats' columns, as Docker's.
var statsHeaders = map[string]string{"ID": "CONTAINER ID", "CPUPerc": "CPU %", "MemUsage": "MEM USAGE / LIMIT",
	"MemPerc": "MEM %", "NetIO": "NET I/O"}

// statsCommand is docker stats: CPU, memory, network and pids of running
// containers, from their cgroups and network namespaces, every second
// until Ctrl-C, or once with --no-stream.
func statsCommand() *cli.Command {
	return &cli.Command{
		Name:      "stats",
		Usage:     "show what running containers use: CPU, memory, network, pids (every second; --no-stream: once)",
		ArgsUsage: "[CONTAINER...]",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "no-stream", Usage: "show once, and return"},
			formatFlag("container (.ID .Name .CPUPerc .MemUsage .MemPerc .NetIO .PIDs)"),
		},
		Action: func(c *cli.Context) error {
			text := `table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.PIDs}}`
			if c.IsSet("format") {
				text = c.String("format")
			}
			f, err := parseFormat(text, statsHeaders)
			if err != nil {
				return err
			}
			containers, err := containerStore(c)
			if err != nil {
				return err
			}
			refs := c.Args().Slice()
			if len(refs) == 0 {
				all, err := containers.List()
				if err != nil {
					return err
				}
				for _, st := range all {
					if st.Status == container.Running || st.Status == container.Paused {
						refs = append(refs, st.ID)
					}
				}
			}
			// Once streaming, a container that stops leaves the table;
			// the first reading names any that does not run.
			first := true
			read := func() (map[string]*container.Usage, []string, error) {
				out := map[string]*container.Usage{}
				var order []string
				for _, ref := range refs {
					u, err := containers.Usage(ref)
					if err != nil && !first && (errors.Is(err, container.ErrNotRunning) || errors.Is(err, container.ErrNotFound)) {
						continue
					}
					if err != nil {
						return nil, nil, err
					}
					out[u.State.ID] = u
					order = append(order, u.State.ID)
				}
				first = false
				return out, order, nil
			}
			before, _, err := read()
			if err != nil {
				return err
			}
			tty := isTerminal(os.Stdout)
			for {
				// CPU is a rate: two readings, half a second apart at
				// first, then a second.
				select {
				case <-c.Context.Done():
					return nil
				case <-time.After(500 * time.Millisecond):
				}
				after, order, err := read()
				if err != nil {
					return err
				}
				var rows []any
				for _, id := range order {
					u, prev := after[id], before[id]
					if prev == nil {
						prev = u
					}
					rows = append(rows, statsRow{ID: shortID(u.State.ID), Name: u.State.Name,
						CPUPerc:  fmt.Sprintf("%.2f%%", container.CPUPercent(prev, u)),
						MemUsage: binSize(u.MemoryBytes) + " / " + binSize(u.MemoryLimit),
						MemPerc:  fmt.Sprintf("%.2f%%", percent(u.MemoryBytes, u.MemoryLimit)),
						NetIO:    size(u.RxBytes) + " / " + size(u.TxBytes),
						PIDs:     fmt.Sprint(u.Pids)})
				}
				if tty && !c.Bool("no-stream") {
					fmt.Print("\x1b[H\x1b[J") // home, and clear the screen
				}
				if err := f.render(os.Stdout, rows); err != nil {
					return err
				}
				if c.Bool("no-stream") {
					return nil
				}
				before = after
				time.Sleep(500 * time.Millisecond)
			}
		},
	}
}

// percent is part of whole, in percent.
func percent(part, whole int64) float64 {
	if whole <= 0 {
		return 0
	}
	return float64(part) * 100 / float64(whole)
}

// binSize is a memory size as docker stats shows it: 1.5MiB.
func binSize(n int64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	f := float64(n)
	i := 0
	for f >= 1024 && i < len(units)-1 {
		f /= 1024
		i++
	}
	if i == 0 {
		return fmt.Sprintf("%dB", n)
	}
	return strings.TrimSuffix(fmt.Sprintf("%.2f", f), ".00") + units[i]
}

package main

import (
	"encoding/json"
	"fmt"
	"os"
	"text/tabwriter"

	"github.com/gocell/gocell/final/internal/container"
	"github.com/gocell/gocell/final/internal/volume"
	"github.com/urfave/cli/v2"
)

func volumeCommand() *cli.Command {
	return &cli.Command{
		Name:  "volume",
		Usage: "manage named volumes: create, ls, inspect, rm, prune",
		Subcommands: []*cli.Command{
			{
				Name: "create", Usage: "create a named volume", ArgsUsage: "NAME",
				Action: func(c *cli.Context) error {
					if err := needArgs(c, 1, "which name?"); err != nil {
						return err
					}
					vols, err := volumes(c)
					if err != nil {
						return err
					}
					v, _, err := vols.Create(c.Args().First())
					if err != nil {
						return err
					}
					printf("%s\n", v.Name)
					return nil
				},
			},
			{
				Name: "ls", Usage: "list named volumes",
				Flags: []cli.Flag{formatFlag("volume (.Name .Driver .Mountpoint)")},
				Action: func(c *cli.Context) error {
					vols, err := volumes(c)
					if err != nil {
						return err
					}
					list, err := vols.List()
					if err != nil {
						return err
					}
					if c.IsSet("format") {
						f, err := parseFormat(c.String("format"), map[string]string{"Name": "VOLUME NAME"})
						if err != nil {
							return err
						}
						var rows []any
						for _, v := range list {
							rows = append(rows, struct{ Name, Driver, Mountpoint string }{v.Name, "local", v.Dir})
						}
						return f.render(os.Stdout, rows)
					}
					w := tabwriter.NewWriter(os.Stdout, 0, 8, 3, ' ', 0)
					fmt.Fprintln(w, "VOLUME NAME\tMOUNTPOINT")
					for _, v := range list {
						fmt.Fprintf(w, "%s\t%s\n", v.Name, v.Dir)
					}
					return w.Flush()
				},
			},
			{
				Name: "inspect", Usage: "show named volumes as JSON", ArgsUsage: "NAME...",
				Action: func(c *cli.Context) error {
					if err := needArgs(c, 1, "which volume?"); err != nil {
						return err
					}
					vols, err := volumes(c)
					if err != nil {
						return err
					}
					var out []any
					for _, name := range c.Args().Slice() {
						v, err := vols.Get(name)
						if err != nil {
							return err
						}
						out = append(out, v)
					}
					enc := json.NewEncoder(os.Stdout)
					enc.SetIndent("", "  ")
					return enc.Encode(out)
				},
			},
			{
				Name: "rm", Usage: "remove named volumes no container uses", ArgsUsage: "NAME...",
				Action: func(c *cli.Context) error {
					if err := needArgs(c, 1, "which volume?"); err != nil {
						return err
					}
					vols, inUse, err := volumesAndUse(c)
					if err != nil {
						return err
					}
					for _, name := range c.Args().Slice() {
						if err := vols.Remove(name, inUse[name]); err != nil {
							return err
						}
						printf("%s\n", name)
					}
					return nil
				},
			},
			{
				Name: "prune", Usage: "remove every named volume no container uses",
				Action: func(c *cli.Context) error {
					vols, inUse, err := volumesAndUse(c)
					if err != nil {
						return err
					}
					removed, err := vols.Prune(inUse)
					for _, name := range removed {
						printf("%s\n", name)
					}
					return err
				},
			},
		},
	}
}

// volumesInUse lists the named volumes that containers use, leaving out
// the container except (for rm -v).
func volumesInUse(containers *container.Store, except string) (map[string]bool, error) {
	all, err := containers.List()
	if err != nil {
		return nil, err
	}
	inUse := map[string]bool{}
	for _, st := range all {
		if st.ID == except {
			continue
		}
		for _, m := range st.Spec.Mounts {
			if m.Named {
				inUse[m.Source] = true
			}
		}
	}
	return inUse, nil
}

// volumes opens the volume store of --root.
func volumes(c *cli.Context) (*volume.Store, error) {
	containers, err := containerStore(c)
	if err != nil {
		return nil, err
	}
	return containers.Volumes()
}

// volumesAndUse opens the volume store and lists the volumes in use.
func volumesAndUse(c *cli.Context) (*volume.Store, map[string]bool, error) {
	containers, err := containerStore(c)
	if err != nil {
		return nil, nil, err
	}
	inUse, err := volumesInUse(containers, "")
	if err != nil {
		return nil, nil, err
	}
	vols, err := containers.Volumes()
	return vols, inUse, err
}

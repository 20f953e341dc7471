package main

import (
	"encoding/json"
	"fmt"
	"os"
	"text/tabwriter"

	"github.com/gocell/gocell/final/internal/container"
	"github.com/gocell/gocell/final/internal/network"
	"github.com/urfave/cli/v2"
)

func networkCommand() *cli.Command {
	return &cli.Command{
		Name:  "network",
		Usage: "manage networks: create, ls, inspect, rm",
		Subcommands: []*cli.Command{
			{
				Name: "create", Usage: "create a network with a bridge of its own", ArgsUsage: "NAME",
				Flags: []cli.Flag{&cli.StringFlag{Name: "subnet", Usage: "IPv4 subnet, such as 10.77.1.0/24", Required: true}},
				Action: func(c *cli.Context) error {
					if err := needArgs(c, 1, "which name?"); err != nil {
						return err
					}
					nm, err := networks(c)
					if err != nil {
						return err
					}
					n, err := nm.Create(c.Args().First(), c.String("subnet"))
					if err != nil {
						return err
					}
					printf("%s\n", n.Name)
					return nil
				},
			},
			{
				Name: "ls", Usage: "list networks",
				Flags: []cli.Flag{formatFlag("network (.Name .Driver .Bridge .Subnet .Gateway)")},
				Action: func(c *cli.Context) error {
					nm, err := networks(c)
					if err != nil {
						return err
					}
					list, err := nm.List()
					if err != nil {
						return err
					}
					if c.IsSet("format") {
						f, err := parseFormat(c.String("format"), nil)
						if err != nil {
							return err
						}
						var rows []any
						for _, n := range list {
							rows = append(rows, struct{ Name, Driver, Bridge, Subnet, Gateway string }{
								n.Name, "bridge", n.Bridge, fmt.Sprint(n.Subnet), fmt.Sprint(n.Gateway)})
						}
						return f.render(os.Stdout, rows)
					}
					w := tabwriter.NewWriter(os.Stdout, 0, 8, 3, ' ', 0)
					fmt.Fprintln(w, "NAME\tBRIDGE\tSUBNET\tGATEWAY")
					for _, n := range list {
						fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", n.Name, n.Bridge, n.Subnet, n.Gateway)
					}
					return w.Flush()
				},
			},
			{
				Name: "inspect", Usage: "show networks and their containers as JSON", ArgsUsage: "NAME...",
				Action: func(c *cli.Context) error {
					if err := needArgs(c, 1, "which network?"); err != nil {
						return err
					}
					nm, err := networks(c)
					if err != nil {
						return err
					}
					var out []any
					for _, name := range c.Args().Slice() {
						v, err := networkView(nm, name)
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
				Name: "rm", Usage: "remove networks no container uses", ArgsUsage: "NAME...",
				Action: func(c *cli.Context) error {
					if err := needArgs(c, 1, "which network?"); err != nil {
						return err
					}
					containers, err := containerStore(c)
					if err != nil {
						return err
					}
					nm, err := containers.Networks()
					if err != nil {
						return err
					}
					all, err := containers.List()
					if err != nil {
						return err
					}
					for _, name := range c.Args().Slice() {
						inUse := false
						for _, st := range all {
							inUse = inUse || st.Spec.Network == name
						}
						if err := nm.Remove(name, inUse); err != nil {
							return err
						}
						printf("%s\n", name)
					}
					return nil
				},
			},
		},
	}
}

// networks opens the network manager of --root.
func networks(c *cli.Context) (*network.Manager, error) {
	containers, err := containerStore(c)
	if err != nil {
		return nil, err
	}
	return containers.Networks()
}

// usedBy lists the containers whose spec matches.
func usedBy(all []*container.State, match func(container.Spec) bool) []*container.State {
	var out []*container.State
	for _, st := range all {
		if match(st.Spec) {
			out = append(out, st)
		}
	}
	return out
}

// networkInfo is a network as inspect shows it: with its containers.
type networkInfo struct {
	*network.Network
	Containers map[string]string `json:"containers"`
}

// networkView finds a network and its containers, for inspect.
func networkView(nm *network.Manager, name string) (*networkInfo, error) {
	n, err := nm.Get(name)
	if err != nil {
		return nil, err
	}
	hosts, err := nm.Hosts(name)
	if err != nil {
		return nil, err
	}
	return &networkInfo{n, hosts}, nil
}

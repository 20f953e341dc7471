package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/gocell/gocell/final/internal/container"
	"github.com/gocell/gocell/final/internal/image"
	"github.com/gocell/gocell/final/internal/network"
	"github.com/gocell/gocell/final/internal/volume"
	"github.com/urfave/cli/v2"
)

func inspectCommand() *cli.Command {
	return &cli.Command{
		Name:      "inspect",
		Usage:     "show containers, images, volumes or networks as JSON (or through --format)",
		ArgsUsage: "NAME|ID...",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "spec", Usage: "show the OCI runtime spec (config.json) of the container's last start instead"},
			&cli.StringFlag{Name: "type", Usage: "container, image, volume or network (default: the first that has the name, in that order)"},
			formatFlag("object (a container: .ID .Name .Status .Pid .Spec.Image ...; an image: .ID .RepoTags .Config.Cmd ...)"),
		},
		Action: func(c *cli.Context) error {
			if err := needArgs(c, 1, "which container, image, volume or network?"); err != nil {
				return err
			}
			var f *format
			if c.IsSet("format") {
				var err error
				if f, err = parseFormat(c.String("format"), nil); err != nil {
					return err
				}
			}
			typ := c.String("type")
			switch typ {
			case "", "container", "image", "volume", "network":
			default:
				return usageError("--type %q: container, image, volume or network", typ)
			}
			containers, err := containerStore(c)
			if err != nil {
				return err
			}
			if c.Bool("spec") {
				for _, ref := range c.Args().Slice() {
					data, err := containers.ReadSpec(ref)
					if err != nil {
						return err
					}
					os.Stdout.Write(data)
				}
				return nil
			}
			var out []any
			for _, ref := range c.Args().Slice() {
				obj, err := inspectOne(c, containers, ref, typ)
				if err != nil {
					return err
				}
				out = append(out, obj)
			}
			if f != nil {
				return f.render(os.Stdout, out)
			}
			enc := json.NewEncoder(os.Stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(out)
		},
	}
}

// errNoObject is inspect's answer when no kind of object has the name.
var errNoObject = errors.New("no such object")

// inspectOne finds ref among the kinds typ allows, in Docker's order.
func inspectOne(c *cli.Context, containers *container.Store, ref, typ string) (any, error) {
	if typ == "" || typ == "container" {
		st, err := containers.Get(ref)
		if err == nil || typ != "" || !errors.Is(err, container.ErrNotFound) {
			return st, err
		}
	}
	if typ == "" || typ == "image" {
		images, err := image.Open(c.String("root"))
		if err != nil {
			return nil, err
		}
		img, err := images.Get(ref)
		if err == nil || typ != "" || !(errors.Is(err, image.ErrNotFound) || errors.Is(err, image.ErrInvalidReference)) {
			return img, err
		}
	}
	if typ == "" || typ == "volume" {
		vols, err := containers.Volumes()
		if err != nil {
			return nil, err
		}
		v, err := vols.Get(ref)
		if err == nil || typ != "" || !errors.Is(err, volume.ErrNotFound) {
			return v, err
		}
	}
	nm, err := containers.Networks()
	if err != nil {
		return nil, err
	}
	n, err := networkView(nm, ref)
	if err == nil || typ != "" {
		return n, err
	}
	if errors.Is(err, network.ErrNotFound) {
		return nil, fmt.Errorf("%w: %s", errNoObject, ref)
	}
	return nil, err
}

package main

import (
	"fmt"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"
)

// historyCommand is docker history: the steps that built an image,
// newest first, from its config.
func historyCommand() *cli.Command {
	return &cli.Command{
		Name:      "history",
		Usage:     "show how an image was built: its history, newest step first",
		ArgsUsage: "IMAGE",
		Flags:     []cli.Flag{&cli.BoolFlag{Name: "no-trunc", Usage: "do not cut long commands short"}},
		Action: func(c *cli.Context) error {
			if err := needArgs(c, 1, "which image?"); err != nil {
				return err
			}
			images, _, err := stores(c)
			if err != nil {
				return err
			}
			img, err := images.Get(c.Args().First())
			if err != nil {
				return err
			}
			hist, err := images.History(img)
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(os.Stdout, 0, 8, 3, ' ', 0)
			fmt.Fprintln(w, "IMAGE\tCREATED\tCREATED BY\tSIZE\tCOMMENT")
			for i, h := range hist {
				id := "<missing>"
				if i == 0 {
					id = shortID(strings.TrimPrefix(img.ID, "sha256:"))
				}
				created := "N/A"
				if !h.Created.IsZero() {
					created = ago(h.Created) + " ago"
				}
				by := strings.ReplaceAll(h.CreatedBy, "\t", " ")
				if !c.Bool("no-trunc") && len(by) > 45 {
					by = by[:44] + "…"
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", id, created, by, size(h.Size), h.Comment)
			}
			return w.Flush()
		},
	}
}

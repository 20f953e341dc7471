package main

import (
	"fmt"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"
)

// imageRow is an image name as images --format sees it: Docker's fields.
type imageRow struct {
	ID, Repository, Tag, Digest, CreatedSince, CreatedAt, Size string
}

// imageHeaders name images' columns in a --format table.
var imageHeaders = map[string]string{"ID": "IMAGE ID", "CreatedSince": "CREATED", "CreatedAt": "CREATED AT"}

func imagesCommand() *cli.Command {
	return &cli.Command{
		Name:  "images",
		Usage: "list images",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "ids only"},
			&cli.BoolFlag{Name: "no-trunc", Usage: "whole ids (sha256:...)"},
			formatFlag("image name (.ID .Repository .Tag .Digest .CreatedSince .CreatedAt .Size)"),
		},
		Action: func(c *cli.Context) error {
			var f *format
			if c.IsSet("format") {
				var err error
				if f, err = parseFormat(c.String("format"), imageHeaders); err != nil {
					return err
				}
			}
			images, _, err := stores(c)
			if err != nil {
				return err
			}
			list, err := images.List()
			if err != nil {
				return err
			}
			var rows []any
			w := tabwriter.NewWriter(os.Stdout, 0, 8, 3, ' ', 0)
			if !c.Bool("quiet") && f == nil {
				fmt.Fprintln(w, "REPOSITORY\tTAG\tIMAGE ID\tCREATED\tSIZE")
			}
			for _, img := range list {
				id := shortID(strings.TrimPrefix(img.ID, "sha256:"))
				if c.Bool("no-trunc") {
					id = img.ID
				}
				if c.Bool("quiet") {
					fmt.Fprintln(w, id)
					continue
				}
				tags := img.RepoTags
				if len(tags) == 0 {
					tags = []string{"<none>:<none>"}
				}
				for _, t := range tags {
					i := strings.LastIndex(t, ":")
					created := "N/A"
					if !img.Created.IsZero() {
						created = ago(img.Created) + " ago"
					}
					if f != nil {
						digest := img.Digest
						if digest == "" {
							digest = "<none>"
						}
						rows = append(rows, imageRow{ID: id, Repository: t[:i], Tag: t[i+1:], Digest: digest,
							CreatedSince: created, CreatedAt: img.Created.Local().Format("2006-01-02 15:04:05 -0700 MST"),
							Size: size(img.Size)})
						continue
					}
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", t[:i], t[i+1:], id, created, size(img.Size))
				}
			}
			if f != nil && !c.Bool("quiet") {
				return f.render(os.Stdout, rows)
			}
			return w.Flush()
		},
	}
}

// size is a byte count for people: 1.2MB.
func size(n int64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.1fGB", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.1fMB", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.1fkB", float64(n)/1e3)
	}
	return fmt.Sprintf("%dB", n)
}

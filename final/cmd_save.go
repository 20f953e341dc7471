package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/urfave/cli/v2"
)

// saveCommand is docker save: images, with their names, as a docker save
// archive, so that they move to another gocell, Docker or podman.
func saveCommand() *cli.Command {
	return &cli.Command{
		Name:      "save",
		Usage:     "write images to a docker save archive (docker load, podman load and gocell load read it)",
		ArgsUsage: "IMAGE...",
		Flags: []cli.Flag{&cli.StringFlag{Name: "output", Aliases: []string{"o"},
			Usage: "the archive to write (default: stdout, if it is not a terminal)"}},
		Action: func(c *cli.Context) error {
			if err := needArgs(c, 1, "which image?"); err != nil {
				return err
			}
			images, _, err := stores(c)
			if err != nil {
				return err
			}
			path := c.String("output")
			if path == "" {
				if isTerminal(os.Stdout) {
					return usageError("save: stdout is a terminal: give -o FILE, or redirect it")
				}
				return images.Save(c.Args().Slice(), os.Stdout)
			}
			// Written beside, then renamed: no half archive under the name.
			f, err := os.CreateTemp(filepath.Dir(path), ".gocell-save-*")
			if err != nil {
				return err
			}
			defer os.Remove(f.Name())
			if err := images.Save(c.Args().Slice(), f); err != nil {
				f.Close()
				return err
			}
			if err := f.Close(); err != nil {
				return err
			}
			return os.Rename(f.Name(), path)
		},
	}
}

// loadCommand is docker load: the images of an archive, with the names
// it gives them. It is gocell import, reading stdin when no file is named.
func loadCommand() *cli.Command {
	return &cli.Command{
		Name:  "load",
		Usage: "load images from a docker save archive (or an OCI layout's tar), with their names",
		Flags: []cli.Flag{&cli.StringFlag{Name: "input", Aliases: []string{"i"},
			Usage: "the archive to read (default: stdin)"}},
		Action: func(c *cli.Context) error {
			images, _, err := stores(c)
			if err != nil {
				return err
			}
			path := c.String("input")
			if path == "" {
				if isTerminal(os.Stdin) {
					return usageError("load: stdin is a terminal: give -i FILE, or redirect it")
				}
				// The archive is read more than once: keep it in a file.
				f, err := os.CreateTemp("", "gocell-load-*.tar")
				if err != nil {
					return err
				}
				defer os.Remove(f.Name())
				_, err = io.Copy(f, os.Stdin)
				if cerr := f.Close(); err == nil {
					err = cerr
				}
				if err != nil {
					return fmt.Errorf("load: read stdin: %w", err)
				}
				path = f.Name()
			}
			imported, err := images.Import(c.Context, path, "")
			if err != nil {
				return err
			}
			for _, img := range imported {
				for _, t := range img.RepoTags {
					printf("Loaded image: %s\n", t)
				}
				if len(img.RepoTags) == 0 {
					printf("Loaded image ID: %s\n", img.ID)
				}
			}
			return nil
		},
	}
}

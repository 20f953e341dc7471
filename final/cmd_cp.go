package main

import (
	"errors"
	"os"
	"os/signal"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/gocell/gocell/final/internal/container"
	"github.com/urfave/cli/v2"
)

// cpCommand is docker cp, between a container (running or not) and the
// host, in either direction. See container.CopyFrom for what keeps it safe.
func cpCommand() *cli.Command {
	return &cli.Command{
		Name:      "cp",
		Usage:     "copy files between a container and the host (symlinks are copied, never followed)",
		ArgsUsage: "CONTAINER:SRC_PATH DEST_PATH | SRC_PATH CONTAINER:DEST_PATH",
		Action: func(c *cli.Context) error {
			if c.Args().Len() != 2 {
				return usageError("cp: give a source and a destination, one of them CONTAINER:PATH (see gocell cp --help)")
			}
			src, dst := c.Args().Get(0), c.Args().Get(1)
			sRef, sPath, sIn := splitCopyArg(src)
			dRef, dPath, dIn := splitCopyArg(dst)
			switch {
			case sIn && dIn:
				return usageError("cp: from one container to another is not supported; copy through the host")
			case !sIn && !dIn:
				return usageError("cp: one of %q and %q must be CONTAINER:PATH", src, dst)
			case sPath == "" || dPath == "":
				return usageError("cp: a path is empty")
			}
			containers, err := containerStore(c)
			if err != nil {
				return err
			}
			// Ctrl-C stops the copy, and what it made half goes.
			ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, unix.SIGTERM)
			defer stop()
			if sIn {
				err = containers.CopyFrom(ctx, sRef, sPath, dPath)
			} else {
				err = containers.CopyTo(ctx, dRef, sPath, dPath)
			}
			if errors.Is(err, container.ErrCopy) {
				return usageError("%s", err)
			}
			return err
		},
	}
}

// splitCopyArg tells CONTAINER:PATH from a host path, as Docker does: a
// path that starts with / or . is the host's, colon or not.
func splitCopyArg(arg string) (ref, path string, inContainer bool) {
	if strings.HasPrefix(arg, "/") || strings.HasPrefix(arg, ".") {
		return "", arg, false
	}
	ref, path, ok := strings.Cut(arg, ":")
	if !ok {
		return "", arg, false
	}
	return ref, path, true
}

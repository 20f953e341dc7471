package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"time"

	"github.com/gocell/gocell/final/internal/image"
	"github.com/gocell/gocell/final/internal/registry"
	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"
)

// registryCommand is the classroom registry: a teacher's machine serves
// its images to the class, offline. See lessons/workshop.md.
func registryCommand() *cli.Command {
	return &cli.Command{
		Name:  "registry",
		Usage: "a registry for a classroom: serve this machine's images over the network",
		Subcommands: []*cli.Command{{
			Name: "serve",
			Usage: "serve the images of the local store, and what is pushed, over the OCI " +
				"distribution API (plain http), until Ctrl-C; what is served is kept on disk",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "addr", Value: ":5000", Usage: "HOST:PORT to listen on (:5000: every address of this machine)"},
				&cli.StringFlag{Name: "root", Usage: "where the registry keeps blobs and manifests (default: ROOT/registry under gocell's --root)"},
				&cli.BoolFlag{Name: "no-local", Usage: "do not serve the local store's images, only what is pushed"},
				&cli.BoolFlag{Name: "allow-push", Usage: "let every client push and delete (default: only this machine; the class pulls)"},
			},
			Action: serveRegistry,
		}},
	}
}

// serveRegistry listens, publishes the local images, and serves until a
// signal says stop.
func serveRegistry(c *cli.Context) error {
	// gocell's --root, as the parent command sees it: serve's own
	// --root is the registry's.
	gocellRoot := c.Lineage()[1].String("root")
	if gocellRoot == "" {
		return errors.New("registry serve: gocell's --root is not set")
	}
	dir := c.String("root")
	if dir == "" {
		dir = filepath.Join(gocellRoot, "registry")
	}
	ln, err := net.Listen("tcp", c.String("addr"))
	if err != nil {
		return usageError("--addr %s: %v", c.String("addr"), err)
	}
	defer ln.Close()
	if !c.Bool("no-local") {
		// Published quietly, then opened again (from what it kept) to
		// log the class's requests.
		quiet, err := registry.New(dir, nil)
		if err != nil {
			return err
		}
		if err := publishLocal(c, gocellRoot, quiet); err != nil {
			return err
		}
	}
	srv, err := registry.New(dir, log.New(os.Stderr, "registry: ", log.LstdFlags))
	if err != nil {
		return err
	}
	srv.AllowPush = c.Bool("allow-push")
	where := "http://" + ln.Addr().String()
	if a, ok := ln.Addr().(*net.TCPAddr); ok && a.IP.IsUnspecified() {
		where = fmt.Sprintf("port %d of every address of this machine (http)", a.Port)
	}
	fmt.Fprintf(os.Stderr, "registry listening on %s, kept in %s; Ctrl-C stops it\n", where, dir)
	// A client that stops sending is let go: an upload is held in
	// memory until it is whole.
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute}
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, unix.SIGTERM)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- hs.Serve(ln) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := hs.Shutdown(shut); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	fmt.Fprintln(os.Stderr, "registry stopped")
	return nil
}

// publishLocal pushes the local store's tagged images into the registry,
// through a listener of its own on loopback, closed after: the same
// requests as any client's, before the class can connect.
func publishLocal(c *cli.Context, gocellRoot string, srv http.Handler) error {
	images, err := image.Open(gocellRoot)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: srv, ErrorLog: log.New(io.Discard, "", 0)}
	go hs.Serve(ln)
	defer hs.Close()
	return images.Publish(c.Context, ln.Addr().String(), func(name, as string, err error) {
		if err != nil {
			fmt.Fprintf(os.Stderr, "not serving %s: %v\n", name, err)
			return
		}
		fmt.Fprintf(os.Stderr, "serving %s as %s\n", name, as)
	})
}

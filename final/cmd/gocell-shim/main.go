// gocell-shim is the small program that looks after a detached gocell
// container once it runs: it logs the container's output, waits for its
// process and then has gocell clean up. gocell's monitor executes it in
// its own place, from the same directory as gocell; install both:
//
//	sudo go build -o /usr/local/bin/gocell ./final
//	sudo go build -o /usr/local/bin/gocell-shim ./final/cmd/gocell-shim
//
// It keeps its imports few on purpose: each detached container has one,
// for as long as it runs. See final/internal/shim.
package main

import (
	"os"
	"runtime"

	"github.com/gocell/gocell/final/internal/shim"
)

// The shim executes gocell at the end: from the main thread, or the
// thread group's leader would be a zombie for a moment and the monitor
// look dead to gocell (see final/internal/shim). runtime.LockOSThread in
// an init function keeps main on the main thread.
func init() { runtime.LockOSThread() }

func main() { shim.Main(os.Args[1:]) }

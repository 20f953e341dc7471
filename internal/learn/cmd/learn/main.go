// Command learn is the learner's loop of the kit, which the Makefile runs
// from the repository's top directory:
//
//	make start-03        learn start 03       a workspace: work/03-mount
//	make check-03        learn check 03       the step's checks on it
//	make check-03-2      learn check 03-2     exercise 2 of chapter 03
//	make solution-03     learn solution 03    diff -u work/03-mount/main.go 03-mount/main.go
//
// See package internal/learn.
package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/gocell/gocell/internal/learn"
)

func main() {
	if len(os.Args) < 3 {
		usage()
	}
	wd, err := os.Getwd()
	if err != nil {
		die(err)
	}
	k, err := learn.FindKit(wd)
	if err != nil {
		die(err)
	}
	arg := os.Args[2]
	switch os.Args[1] {
	case "start":
		force := os.Getenv("FORCE") == "1" || (len(os.Args) > 3 && os.Args[3] == "--force")
		dir, err := k.Start(arg, force)
		if err != nil {
			die(err)
		}
		rel, _ := filepath.Rel(k.Root, dir)
		fmt.Printf("start-%s: your workspace is %s: main.go there is step %s with its new "+
			"primitive taken out.\nEach TODO stub in it says what to write, and which section "+
			"of lessons/%s.md explains it.\nRun it:   sudo go -C work run ./%s run /bin/sh\n"+
			"Check it: sudo make check-%s\n", arg, rel, learn.StepDir(arg), learn.StepDir(arg),
			learn.StepDir(arg), arg)
	case "check":
		var ok bool
		if nn, ex, isEx := strings.Cut(arg, "-"); isEx {
			ok, err = k.CheckExercise(nn, ex, os.Stdout)
		} else {
			ok, err = k.Check(arg, os.Stdout)
		}
		if err != nil {
			die(err)
		}
		if !ok {
			os.Exit(1)
		}
	case "solution":
		if learn.StepDir(arg) == "" {
			die(fmt.Errorf("solution-%s: %s", arg, learn.NoStep(arg)))
		}
		mine := filepath.Join("work", learn.StepDir(arg), "main.go")
		if _, err := os.Stat(filepath.Join(k.Root, mine)); err != nil {
			die(fmt.Errorf("solution-%s: there is no workspace %s yet; make one with: make start-%s",
				arg, filepath.Dir(mine), arg))
		}
		// diff(1) exits 1 when the files differ: that is the answer.
		cmd := exec.Command("diff", "-u", mine, filepath.Join(learn.StepDir(arg), "main.go"))
		cmd.Dir, cmd.Stdout, cmd.Stderr = k.Root, os.Stdout, os.Stderr
		var exit *exec.ExitError
		if err := cmd.Run(); err != nil && !(errors.As(err, &exit) && exit.ExitCode() == 1) {
			die(err)
		}
	default:
		usage()
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: learn start NN | check NN | check NN-K | solution NN "+
		"(from the Makefile: make start-03, make check-03, make check-03-2, make solution-03)")
	os.Exit(2)
}

func die(err error) {
	fmt.Fprintln(os.Stderr, err)
	if errors.Is(err, os.ErrExist) {
		os.Exit(1)
	}
	os.Exit(2)
}

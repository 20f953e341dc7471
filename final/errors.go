package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/fatih/color"
	"github.com/gocell/gocell/final/internal/container"
	"github.com/gocell/gocell/final/internal/image"
	"golang.org/x/sys/unix"
)

// exitError carries an exit code out of a command: the status of a
// container's command, or a usage error (2).
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

// usageError is a command line gocell does not understand: exit 2.
func usageError(format string, args ...any) error {
	return &exitError{code: 2, msg: fmt.Sprintf(format, args...)}
}

// exitCode ends gocell with a container's exit status and no message.
func exitCode(code int) error {
	return &exitError{code: code}
}

// report prints an error as one line and returns its exit code, as
// Docker's: 125 when gocell itself failed, 126 when the command cannot
// be executed, 127 when it is not found.
func report(err error) int {
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.msg != "" {
			fmt.Fprintf(os.Stderr, "gocell: %s %s\n", color.New(color.FgRed).Sprint("error:"), ee.msg)
		}
		return ee.code
	}
	code := container.ExitRuntime
	var se *container.StartError
	switch {
	case errors.As(err, &se):
		code = se.Code
	case errors.Is(err, container.ErrCommandNotFound):
		code = container.ExitNotFound
	}
	msg := err.Error()
	var errno unix.Errno
	if errors.As(err, &errno) && !strings.Contains(msg, unix.ErrnoName(errno)) {
		msg += " (" + unix.ErrnoName(errno) + ")"
	}
	if hint := hintFor(err); hint != "" {
		msg += "; " + hint
	}
	fmt.Fprintf(os.Stderr, "gocell: %s %s\n", color.New(color.FgRed).Sprint("error:"), msg)
	return code
}

// hintFor says what to do about the common errors.
func hintFor(err error) string {
	switch {
	case errors.Is(err, container.ErrNotFound):
		return "see gocell ps -a"
	case errors.Is(err, image.ErrNotFound):
		return "see gocell images, or gocell pull it"
	case errors.Is(err, image.ErrInvalidReference):
		return "write NAME[:TAG] or NAME@sha256:DIGEST, such as busybox:latest"
	}
	return ""
}

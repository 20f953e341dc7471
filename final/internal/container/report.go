package container

import (
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Exit codes a container's run ends with when it did not get as far as
// its command's own, as Docker's: the command's status is any other.
const (
	// ExitRuntime: gocell itself failed (a cgroup, a mount, the network).
	ExitRuntime = 125
	// ExitCannotRun: the command is there but cannot be executed.
	ExitCannotRun = 126
	// ExitNotFound: the command is not in the container.
	ExitNotFound = 127
)

// A report is one line on the report pipe: the monitor tells the CLI
// that the command started ("ok PID") or could not ("error CODE
// MESSAGE"), and, at the end, how the container ended ("exit CODE").
// One type writes and reads them all.
type report struct {
	kind string // kindStarted, kindFailed or kindExited
	pid  int    // kindStarted: the command's pid
	code int    // kindFailed, kindExited: the exit code
	msg  string // kindFailed: what went wrong
}

const (
	kindStarted = "ok"
	kindFailed  = "error"
	kindExited  = "exit"
)

func startedReport(pid int) report { return report{kind: kindStarted, pid: pid} }
func exitedReport(code int) report { return report{kind: kindExited, code: code} }
func failedReport(code int, err error) report {
	return report{kind: kindFailed, code: code, msg: err.Error()}
}

// String is the report's line, without its newline.
func (r report) String() string {
	switch r.kind {
	case kindStarted:
		return fmt.Sprintf("ok %d", r.pid)
	case kindExited:
		return fmt.Sprintf("exit %d", r.code)
	}
	// One line: a message with a newline would end the report early.
	return fmt.Sprintf("error %d %s", r.code, strings.ReplaceAll(r.msg, "\n", " "))
}

// send writes the report's line to w.
func (r report) send(w io.Writer) { fmt.Fprintln(w, r.String()) }

// parseReport reads a report line. Anything else, an empty line
// included (the writer died first), is a failure with ExitRuntime and
// the line as its message, or none.
func parseReport(line string) report {
	line = strings.TrimSpace(line)
	kind, rest, _ := strings.Cut(line, " ")
	switch kind {
	case kindStarted:
		if pid, err := strconv.Atoi(rest); err == nil {
			return startedReport(pid)
		}
	case kindExited:
		if code, err := strconv.Atoi(rest); err == nil {
			return exitedReport(code)
		}
	case kindFailed:
		c, msg, _ := strings.Cut(rest, " ")
		if code, err := strconv.Atoi(c); err == nil {
			return report{kind: kindFailed, code: code, msg: msg}
		}
	}
	return report{kind: kindFailed, code: ExitRuntime, msg: line}
}

// Step 02-pid: the command becomes process 1.
//
// This step keeps the UTS namespace of 01-uts and adds a PID namespace:
// process ids start again at 1 inside it, and the command we run is that
// process 1, the "init" of its own little world. Its parent, on the host,
// sees it under an ordinary pid.
//
// Try it (as root; namespaces need CAP_SYS_ADMIN):
//
//	sudo go run ./02-pid run /bin/sh
//	# echo $$   -> 1
//	# ps        -> still every process of the host! ps reads /proc,
//	#              and this /proc is the host's. Step 03 fixes that.
//
// Read lessons/02-pid.md beside this file. See namespaces(7),
// pid_namespaces(7), clone(2) and proc(5).
package main

import (
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strings"
	"syscall"

	"github.com/fatih/color"
	"golang.org/x/sys/unix"
)

// step is the name this program narrates and reports errors under.
const step = "02-pid"

// standardPath is the PATH the command runs with, the same one Docker
// gives a container, so that `run sh` and `run hostname` just work.
const standardPath = "/usr/local/sbin:/usr/local/bin:" +
	"/usr/sbin:/usr/bin:/sbin:/bin"

// Exit codes, as Docker uses them: 125 when the container could not be
// set up, 126 when the command cannot be executed, 127 when it is not
// found. Otherwise the program exits with the command's own status.
const exitSetup = 125
const exitCannotExec = 126
const exitNotFound = 127

// exitUsage is for a command line we do not understand.
const exitUsage = 2

// The settings, filled in from the command line by main. Both halves of
// the program (run on the host, child in the new namespaces) parse the
// same arguments, so they always agree.
var hostname string
var quiet bool

// namespace is one kind of namespace and the clone(2) flag that makes a
// new one.
type namespace struct {
	name string
	flag uintptr
}

// namespaces lists the namespaces this step creates for the child. Each
// step adds one line here; the names are those of /proc/PID/ns/NAME.
var namespaces = []namespace{
	// UTS: hostname and NIS domain name. See uts_namespaces(7).
	{"uts", unix.CLONE_NEWUTS},
	// PID: process ids start again at 1. See pid_namespaces(7).
	{"pid", unix.CLONE_NEWPID},
}

func main() {
	flags := flag.NewFlagSet(step, flag.ContinueOnError)
	flags.Usage = func() { usage(flags) }
	flags.StringVar(&hostname, "hostname", "gocell",
		"hostname inside the container")
	flags.BoolVar(&quiet, "q", false,
		"quiet: do not narrate, only run the command")

	if len(os.Args) < 2 {
		usage(flags)
		os.Exit(exitUsage)
	}
	verb := os.Args[1]
	if verb == "-h" || verb == "--help" || verb == "help" {
		usage(flags)
		os.Exit(0)
	}
	// The flag package stops at the first argument that is not a flag,
	// so everything from the command on is passed to it untouched:
	// `run -q ls -l` gives -q to us and -l to ls.
	err := flags.Parse(os.Args[2:])
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		os.Exit(exitUsage)
	}

	switch verb {
	case "run":
		run(flags.Args())
	case "child":
		child(flags.Args())
	default:
		fmt.Fprintf(os.Stderr, "%s: unknown command %q\n", step, verb)
		usage(flags)
		os.Exit(exitUsage)
	}
}

// run is the host side. It starts a copy of this program, as "child", in
// new namespaces, waits for it and exits with its status.
func run(args []string) {
	if len(args) == 0 {
		fail(exitUsage, "no command given; try: sudo go run ./%s run /bin/sh",
			step)
	}
	if os.Geteuid() != 0 {
		fail(exitSetup, "must be run as root (namespaces need "+
			"CAP_SYS_ADMIN); try: sudo go run ./%s run %s",
			step, strings.Join(args, " "))
	}

	// /proc/self/exe is this very program. Running it again with "child"
	// is how a Go program gets code to run inside the new namespaces:
	// Go cannot fork(2) without exec, because a forked copy of a
	// multithreaded runtime would have only one thread. See proc(5).
	childArgs := append([]string{"child"}, os.Args[2:]...)
	cmd := exec.Command("/proc/self/exe", childArgs...)
	cmd.Stdin = os.Stdin
	cmd.Stdout = os.Stdout
	cmd.Stderr = os.Stderr
	attr := &syscall.SysProcAttr{}
	// The clone(2) flags: one new namespace for each entry of the list.
	attr.Cloneflags = cloneflags()
	// If we die, the kernel kills the child too, so nothing is left
	// running. See PR_SET_PDEATHSIG in prctl(2). It is tied to the thread
	// that started the child, hence LockOSThread below.
	attr.Pdeathsig = syscall.SIGKILL
	// On a terminal, the child gets a process group of its own, which
	// becomes the terminal's foreground group: Ctrl-C then reaches the
	// command, and a shell inside finds its own group in charge of the
	// terminal. Ours has no pid in the new PID namespace, so a shell could
	// not hand the terminal back to it on exit. See tcsetpgrp(3).
	if isTerminal(os.Stdin) {
		attr.Setpgid = true
		attr.Foreground = true
	}
	cmd.SysProcAttr = attr

	runtime.LockOSThread()
	say("starting the child in new namespaces: %s", namespaceNames())
	if err := cmd.Start(); err != nil {
		fail(exitSetup, "clone: %s", errText(err))
	}
	say("child started: pid %d on the host", cmd.Process.Pid)
	forwardSignals(cmd.Process)

	// The child's exit status becomes ours, as a shell would report it.
	err := cmd.Wait()
	status := exitStatus(cmd.ProcessState)
	if err != nil && cmd.ProcessState == nil {
		fail(exitSetup, "wait: %s", errText(err))
	}
	say("child exited with status %d", status)
	os.Exit(status)
}

// child runs inside the new namespaces. It sets up what each namespace
// needs, in order, and then replaces itself with the command.
func child(args []string) {
	if len(args) == 0 {
		fail(exitUsage, "no command given")
	}
	setHostname()
	showPid()
	execCommand(args)
}

// setHostname gives the new UTS namespace its own hostname. Only this
// namespace sees it: the host keeps its name.
// Equivalent to: hostname NAME. See sethostname(2).
func setHostname() {
	say("setting the hostname to %q", hostname)
	if err := unix.Sethostname([]byte(hostname)); err != nil {
		fail(exitSetup, "sethostname %q: %s", hostname, errText(err))
	}
}

// showPid shows our pid inside the new PID namespace: 1. We are the first
// process there, and the command will keep this pid when we exec it.
// From now on we are that namespace's init: if we exit, the kernel kills
// every other process in it, and signals from inside reach us only for
// the signals we handle. See pid_namespaces(7).
func showPid() {
	say("my pid in the new PID namespace is %d", os.Getpid())
	say("as pid 1, the command ignores signals it does not handle, " +
		"Ctrl-C included; kill -9 works from the host")
}

// execCommand replaces this program with the command, keeping the PID.
// It searches the standard PATH and passes a small, clean environment,
// not the host's. See execve(2).
func execCommand(args []string) {
	env := []string{"PATH=" + standardPath, "HOME=/root"}
	env = append(env, "HOSTNAME="+hostname)
	if term, ok := os.LookupEnv("TERM"); ok {
		env = append(env, "TERM="+term)
	}
	os.Setenv("PATH", standardPath)
	path, err := exec.LookPath(args[0])
	if errors.Is(err, fs.ErrPermission) {
		fail(exitCannotExec, "%s: not an executable file", args[0])
	}
	if err != nil && strings.Contains(args[0], "/") {
		fail(exitNotFound, "%s: no such file", args[0])
	}
	if err != nil {
		fail(exitNotFound, "%s: command not found (searched PATH=%s)",
			args[0], standardPath)
	}
	say("exec %s", strings.Join(args, " "))
	err = unix.Exec(path, args, env)
	fail(exitCannotExec, "exec %s: %s", path, errText(err))
}

// cloneflags ORs together the clone(2) flags of every namespace in the
// list.
func cloneflags() uintptr {
	var flags uintptr
	for _, ns := range namespaces {
		flags |= ns.flag
	}
	return flags
}

// namespaceNames lists the namespaces for narration: "uts, pid".
func namespaceNames() string {
	var names []string
	for _, ns := range namespaces {
		names = append(names, ns.name)
	}
	return strings.Join(names, ", ")
}

// forwardSignals passes the signals that ask a program to stop on to the
// child, so that `kill PID` of this program reaches the command as well.
func forwardSignals(p *os.Process) {
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, unix.SIGINT, unix.SIGTERM, unix.SIGHUP, unix.SIGQUIT)
	go func() {
		for sig := range signals {
			_ = p.Signal(sig)
		}
	}()
}

// exitStatus turns how the child ended into an exit code: its own code,
// or 128 plus the signal number when a signal killed it, like sh(1).
func exitStatus(state *os.ProcessState) int {
	if state == nil {
		return exitSetup
	}
	ws, ok := state.Sys().(syscall.WaitStatus)
	if ok && ws.Signaled() {
		say("child killed by signal %s", unix.SignalName(ws.Signal()))
		return 128 + int(ws.Signal())
	}
	return state.ExitCode()
}

// say narrates a step: the host side in cyan, the child in green. It
// writes to stderr so the command's own output stays clean, and is plain
// when stderr is not a terminal or NO_COLOR is set, silent with -q.
func say(format string, args ...any) {
	if quiet {
		return
	}
	who := color.New(color.FgCyan).Sprint("[host]")
	if isChild() {
		who = color.New(color.FgGreen).Sprint("[cell]")
	}
	fmt.Fprintf(os.Stderr, "%s %s\n", who, fmt.Sprintf(format, args...))
}

// fail prints one clear line and exits. There are no panics and no stack
// traces: a learner should see what went wrong and what to do.
func fail(code int, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	label := color.New(color.FgRed).Sprint("error:")
	fmt.Fprintf(os.Stderr, "%s: %s %s\n", step, label, msg)
	os.Exit(code)
}

// errText shows an error with the name of its errno, such as
// "invalid argument (EINVAL)", which is the name the man pages use.
func errText(err error) string {
	var errno unix.Errno
	if errors.As(err, &errno) {
		return fmt.Sprintf("%s (%s)", err, unix.ErrnoName(errno))
	}
	return err.Error()
}

// isChild tells the two halves apart for narration.
func isChild() bool {
	return len(os.Args) > 1 && os.Args[1] == "child"
}

// usage prints the help text.
func usage(flags *flag.FlagSet) {
	out := flags.Output()
	fmt.Fprintf(out, "usage: %s run [flags] COMMAND [ARG...]\n\n", step)
	fmt.Fprintf(out, "Runs COMMAND in new namespaces: %s.\n\n",
		namespaceNames())
	fmt.Fprintf(out, "flags:\n")
	flags.PrintDefaults()
	fmt.Fprintf(out, "\nexample: sudo go run ./%s run /bin/sh\n", step)
}

func init() {
	// fatih/color decides about colour by looking at stdout; we narrate
	// on stderr, so look there too. NO_COLOR is honoured by the library.
	if !isTerminal(os.Stderr) {
		color.NoColor = true
	}
}

// isTerminal reports whether f is a terminal, by asking for its terminal
// settings. See ioctl_tty(2).
func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

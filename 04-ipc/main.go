// Step 04-ipc: message queues and shared memory of its own.
//
// This step keeps the UTS, PID and mount namespaces of 03-mount and adds
// an IPC namespace: System V message queues, semaphores and shared memory
// segments, and POSIX message queues, are now the container's own. A
// segment the host made is invisible inside, and the other way round.
// The child also mounts the mqueue file system at /dev/mqueue, which
// shows the POSIX message queues of the IPC namespace that mounted it.
//
// Try it (as root; build the root file system once first):
//
//	sudo scripts/mkrootfs.sh
//	ipcmk -M 4096 && ipcs -m     # on the host: one segment
//	                             # (ipcrm -m ID removes it later)
//	sudo go run ./04-ipc run /bin/sh
//	# cat /proc/sysvipc/shm      -> only the header: none of the host's
//
// Read lessons/04-ipc.md beside this file. See namespaces(7),
// ipc_namespaces(7), sysvipc(7) and mq_overview(7).
package main

import (
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"

	"github.com/fatih/color"
	"golang.org/x/sys/unix"
)

// step is the name this program narrates and reports errors under.
const step = "04-ipc"

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

// defaultRootfs is where scripts/mkrootfs.sh builds the root file system.
// It is on the machine's own disk: pivot_root(2) does not work on a
// shared folder such as /vagrant.
const defaultRootfs = "/var/lib/gocell-lessons/rootfs"

// oldRootPattern names the directory where pivot_root(2) puts the host's
// root, inside the new one, until we unmount it. Each run makes its own
// (the * becomes a random suffix), because two containers may share a
// root file system and must not remove each other's.
const oldRootPattern = ".oldroot-*"

// devices are the device nodes a container gets in its /dev. We borrow
// the host's with bind mounts, which, unlike mknod(2), also work in a
// user namespace (step 06).
var devices = []string{"null", "zero", "full", "random", "urandom", "tty"}

// The settings, filled in from the command line by main. Both halves of
// the program (run on the host, child in the new namespaces) parse the
// same arguments, so they always agree.
var hostname string
var quiet bool
var rootfs string

// oldRoot is the host's old root as the container sees it, e.g.
// /.oldroot-123456, from pivot_root until it is unmounted.
var oldRoot string

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
	// Mount: the list of mounts, and so the file system tree we see.
	// See mount_namespaces(7). (CLONE_NEWNS was the first namespace,
	// before anyone expected more; hence its vague name.)
	{"mnt", unix.CLONE_NEWNS},
	// IPC: System V IPC objects and POSIX message queues.
	// See ipc_namespaces(7).
	{"ipc", unix.CLONE_NEWIPC},
}

func main() {
	flags := flag.NewFlagSet(step, flag.ContinueOnError)
	flags.Usage = func() { usage(flags) }
	flags.StringVar(&hostname, "hostname", "gocell",
		"hostname inside the container")
	flags.BoolVar(&quiet, "q", false,
		"quiet: do not narrate, only run the command")
	flags.StringVar(&rootfs, "rootfs", envOr("GOCELL_ROOTFS", defaultRootfs),
		"root file system to run in (make one: sudo scripts/mkrootfs.sh)")

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
	checkRootfs()

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
	makeMountsPrivate()
	pivotRoot()
	mountProc()
	mountDev()
	mountMqueue()
	mountSys()
	unmountOldRoot()
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

// makeMountsPrivate stops mount events from crossing between the host and
// us. A new mount namespace starts as a copy of the host's, and on systemd
// machines / is a shared mount: without this, every mount we make next
// would appear on the host too, and pivot_root(2) would fail with EINVAL.
// Equivalent to: mount --make-rprivate /. See mount_namespaces(7).
func makeMountsPrivate() {
	say("making every mount private, so nothing propagates to the host")
	mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, "")
}

// pivotRoot makes the root file system our / and puts the host's root
// under /.oldroot-XXXX, from where we unmount it once /dev is built.
// See pivot_root(2).
func pivotRoot() {
	// pivot_root needs the new root to be a mount point. A bind mount of
	// the directory on itself makes it one.
	// Equivalent to: mount --bind ROOTFS ROOTFS
	say("bind-mounting %s on itself", rootfs)
	mount(rootfs, rootfs, "", unix.MS_BIND|unix.MS_REC, "")

	// The old root must go somewhere under the new one.
	put, err := os.MkdirTemp(rootfs, oldRootPattern)
	if err != nil {
		fail(exitSetup, "mkdir in %s: %s", rootfs, errText(err))
	}
	oldRoot = "/" + filepath.Base(put)
	// Equivalent to: mkdir ROOTFS/.oldroot && pivot_root ROOTFS ROOTFS/.oldroot
	say("pivot_root %s %s", rootfs, put)
	if err := unix.PivotRoot(rootfs, put); err != nil {
		os.Remove(put)
		fail(exitSetup, "pivot_root %s %s: %s", rootfs, put, errText(err))
	}
	// Our working directory still points into the old root.
	if err := unix.Chdir("/"); err != nil {
		fail(exitSetup, "chdir /: %s", errText(err))
	}
}

// mountProc mounts a new proc file system. A proc mount shows the
// processes of the PID namespace of whoever mounts it, so from now on
// ps(1) sees only the container. See proc(5).
// Equivalent to: mount -t proc -o nosuid,nodev,noexec proc /proc
func mountProc() {
	say("mounting a fresh /proc for our PID namespace")
	mkdir("/proc", 0o555)
	flags := unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC
	mount("proc", "/proc", "proc", uintptr(flags), "")
}

// mountDev builds a minimal /dev on a tmpfs: a few harmless devices,
// a private devpts for terminals, and /dev/shm. The host's /dev, with its
// disks, stays out of reach.
func mountDev() {
	say("building a minimal /dev")
	// Equivalent to: mount -t tmpfs -o nosuid,mode=755 tmpfs /dev
	mkdir("/dev", 0o755)
	mount("tmpfs", "/dev", "tmpfs", unix.MS_NOSUID, "mode=755")

	// Each device is the host's node, bind-mounted on an empty file.
	// Equivalent to: touch /dev/null &&
	//                mount --bind /.oldroot/dev/null /dev/null
	for _, name := range devices {
		target := "/dev/" + name
		f, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY, 0o666)
		if err != nil {
			fail(exitSetup, "create %s: %s", target, errText(err))
		}
		f.Close()
		mount(oldRoot+target, target, "", unix.MS_BIND, "")
	}

	// A devpts of our own: the container's terminals are not the host's.
	// Equivalent to:
	//   mount -t devpts -o newinstance,ptmxmode=0666 devpts /dev/pts
	mkdir("/dev/pts", 0o755)
	mount("devpts", "/dev/pts", "devpts", unix.MS_NOSUID|unix.MS_NOEXEC,
		"newinstance,ptmxmode=0666,mode=620")
	symlink("pts/ptmx", "/dev/ptmx")

	// Shared memory for POSIX shm_open(3).
	// Equivalent to: mount -t tmpfs -o nosuid,nodev,mode=1777 shm /dev/shm
	mkdir("/dev/shm", os.ModeSticky|0o777)
	mount("shm", "/dev/shm", "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=1777")

	// The usual links into /proc/self/fd.
	symlink("/proc/self/fd", "/dev/fd")
	symlink("/proc/self/fd/0", "/dev/stdin")
	symlink("/proc/self/fd/1", "/dev/stdout")
	symlink("/proc/self/fd/2", "/dev/stderr")
}

// mountMqueue mounts the POSIX message queue file system. It shows the
// queues of the IPC namespace of the process that mounts it: ours, now
// empty. See mq_overview(7).
// Equivalent to: mount -t mqueue -o nosuid,nodev,noexec mqueue /dev/mqueue
func mountMqueue() {
	say("mounting /dev/mqueue for our IPC namespace")
	mkdir("/dev/mqueue", os.ModeSticky|0o777)
	flags := unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC
	mount("mqueue", "/dev/mqueue", "mqueue", uintptr(flags), "")
}

// mountSys mounts sysfs read-only: programs may look at devices and
// settings, but not change the host's through it. See sysfs(5).
// Equivalent to: mount -t sysfs -o ro,nosuid,nodev,noexec sysfs /sys
func mountSys() {
	say("mounting /sys read-only")
	mkdir("/sys", 0o555)
	flags := unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC
	mount("sysfs", "/sys", "sysfs", uintptr(flags), "")
}

// unmountOldRoot lets go of the host's root. MNT_DETACH ("lazy") detaches
// it now even if something below is busy. Afterwards no path leads from
// the container to the host's files.
// Equivalent to: umount -l /.oldroot && rmdir /.oldroot. See umount(2).
func unmountOldRoot() {
	say("unmounting the host's root from %s", oldRoot)
	if err := unix.Unmount(oldRoot, unix.MNT_DETACH); err != nil {
		fail(exitSetup, "umount %s: %s", oldRoot, errText(err))
	}
	if err := os.Remove(oldRoot); err != nil {
		fail(exitSetup, "rmdir %s: %s", oldRoot, errText(err))
	}
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

// checkRootfs makes sure, before anything is created, that the root file
// system exists and is not the host's own /.
func checkRootfs() {
	info, err := os.Stat(rootfs)
	if err != nil || !info.IsDir() {
		fail(exitSetup, "root file system %s: not a directory; make one "+
			"with: sudo scripts/mkrootfs.sh %s (or pass --rootfs DIR)",
			rootfs, rootfs)
	}
	if real, _ := filepath.EvalSymlinks(rootfs); real == "/" {
		fail(exitSetup, "root file system %s is the host's own /; pass "+
			"--rootfs DIR with a separate root file system", rootfs)
	}
}

// mount is mount(2) that stops with a clear message when it fails.
func mount(source, target, fstype string, flags uintptr, data string) {
	if err := unix.Mount(source, target, fstype, flags, data); err != nil {
		fail(exitSetup, "mount %s on %s (type %q): %s",
			source, target, fstype, errText(err))
	}
}

// mkdir creates a directory unless it exists.
func mkdir(path string, mode os.FileMode) {
	if err := os.MkdirAll(path, mode); err != nil {
		fail(exitSetup, "mkdir %s: %s", path, errText(err))
	}
}

// symlink creates a symbolic link. Equivalent to: ln -s TARGET LINK
func symlink(target, link string) {
	if err := os.Symlink(target, link); err != nil {
		fail(exitSetup, "symlink %s -> %s: %s", link, target, errText(err))
	}
}

// envOr returns the environment variable key, or def when it is unset.
func envOr(key, def string) string {
	if v, ok := os.LookupEnv(key); ok && v != "" {
		return v
	}
	return def
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

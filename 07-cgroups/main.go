// Step 07-cgroups: limits on memory, processes and CPU time.
//
// This step keeps the namespaces of 06-user, which decide what the
// container can see, and adds a control group (cgroup), which decides how
// much it may use. Each run gets a cgroup of its own, with --memory,
// --pids and --cpus written into its files, and --cpuset to pin it to
// CPUs; the kernel enforces them and counts what was hit. The step works
// on every layout: cgroup v2 (one unified tree, every current
// distribution), v1 (one tree per controller) and the hybrid of the two.
// On v2 the child is born inside its cgroup (CLONE_INTO_CGROUP); on v1
// the host moves it in before it goes on.
//
// Try it (as root; build the root file system once first):
//
//	sudo scripts/mkrootfs.sh
//	sudo go run ./07-cgroups run --memory 32M --pids 20 --cpus 0.5 /bin/sh
//	# cat /proc/self/cgroup       -> the run's own cgroup
//	# dd if=/dev/zero of=/dev/null bs=64M count=1 -> Killed: out of memory
//	# exit                        -> the host reports the OOM kill
//
// Read lessons/07-cgroups.md beside this file. See cgroups(7),
// cgroup_namespaces(7) and the kernel's admin-guide/cgroup-v2.rst.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/fatih/color"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// step is the name this program narrates and reports errors under.
const step = "07-cgroups"

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

// Each step from 05 on has a bridge and a /24 of its own, named after its
// number, so that steps can run side by side: gocell05 and 10.77.5.0/24.
var bridgeName = "gocell" + step[:2]
var defaultSubnet = "10.77." + strings.TrimLeft(step[:2], "0") + ".0/24"

// stateDir holds the address leases of this step's runs, one file per
// address in use, and serves as the lock that serialises changes to the
// bridge. /run is a tmpfs: it starts empty at every boot.
var stateDir = "/run/gocell-lessons/" + step

// defaultIDMap maps root inside to uid (and gid) 100000 outside, and the
// next 65535 ids after it: a range no user of the host has, the same kind
// of range /etc/subuid hands out. scripts/mkrootfs.sh makes the root file
// system's files owned by 100000, root's inside.
const defaultIDMap = "0:100000:65536"

// cgroupMount is where cgroup file systems are mounted; the layout below
// it is read from /proc/self/mountinfo.
const cgroupMount = "/sys/fs/cgroup"

// controllers are the cgroup controllers this step uses. On cgroup v1
// each has a tree of its own (cpu may share one with cpuacct).
var controllers = []string{"memory", "pids", "cpu"}

// The smallest limits that leave room for this program itself: until it
// execs the command, the child is a Go program, whose runtime needs a few
// megabytes and a few threads, and each thread counts against pids.max.
const minMemory = 16 << 20
const minPids = 10

// cpuPeriod is the scheduling period, in microseconds, over which the CPU
// quota applies: --cpus 0.5 means 50000 microseconds in every 100000.
const cpuPeriod = 100000

// The settings, filled in from the command line by main. Both halves of
// the program (run on the host, child in the new namespaces) parse the
// same arguments, so they always agree.
var hostname string
var quiet bool
var rootfs string

// oldRoot is the host's old root as the container sees it, e.g.
// /.oldroot-123456, from pivot_root until it is unmounted.
var oldRoot string

// The network settings: the --subnet flag, then what the host side made
// for this run (the bridge's and the child's addresses, the host's end of
// the veth pair, and the lease of the child's address), to remove later.
var subnet string
var gateway *net.IPNet
var address *net.IPNet
var hostVeth string
var lease *os.File

// The user namespace's maps, from --uid-map and --gid-map, as
// INSIDE:OUTSIDE:COUNT.
var uidMap string
var gidMap string

// The limits, from --memory, --pids and --cpus ("" for none), and what
// they mean in cgroup terms once checked; and --cpuset, the CPUs the run
// may use, in the kernel's list format ("0-1,3"; "" for all).
var memory string
var pids string
var cpus string
var cpuset string
var memoryBytes int64
var pidsMax int64
var cpuQuota int64

// cgroupLayout says, for each controller, where its tree is mounted and
// whether it is cgroup v2 (unified) or v1.
type cgroupLayout struct {
	// unified is the cgroup2 mount point, if cgroup2 is mounted.
	unified string
	// v1 maps a controller to the mount point of its v1 tree.
	v1 map[string]string
}

// The layout found on this machine, and the cgroup directories made for
// this run: one on v2, or one per controller tree on v1.
var layout cgroupLayout
var cgroupDirs []string

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
	// Network: interfaces, addresses, routes, firewall rules, sockets.
	// See network_namespaces(7).
	{"net", unix.CLONE_NEWNET},
	// User: user and group ids, and the capabilities that go with them.
	// Created first by the kernel, it owns all the others created with
	// it. See user_namespaces(7).
	{"user", unix.CLONE_NEWUSER},
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
	flags.StringVar(&subnet, "subnet", defaultSubnet,
		"IPv4 network of the bridge and the containers, as a CIDR")
	flags.StringVar(&uidMap, "uid-map", defaultIDMap,
		"user ids: INSIDE:OUTSIDE:COUNT")
	flags.StringVar(&gidMap, "gid-map", defaultIDMap,
		"group ids: INSIDE:OUTSIDE:COUNT")
	flags.StringVar(&cpuset, "cpuset", "",
		"CPUs to run on, such as 0 or 0-1,3 (the cpuset controller)")
	flags.StringVar(&memory, "memory", "",
		"memory limit, such as 64M or 1G (bytes, K, M, G)")
	flags.StringVar(&pids, "pids", "",
		"the most processes and threads at once")
	flags.StringVar(&cpus, "cpus", "",
		"CPU time, in CPUs: 0.5 is half of one CPU")

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
	checkSubnet()
	checkIDMaps()
	checkLimits()

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
	// The child waits on this pipe until the host has done its part of the
	// set-up: the host writes "ok" when it is done. A pipe, not a sleep: it
	// takes exactly as long as needed, and if the host dies, the child
	// reads end-of-file and gives up. The child gets the read end as file
	// descriptor 3 (0, 1 and 2 are stdin, stdout and stderr). See pipe(7).
	syncR, syncW, pipeErr := os.Pipe()
	if pipeErr != nil {
		fail(exitSetup, "pipe: %s", errText(pipeErr))
	}
	cmd.ExtraFiles = []*os.File{syncR}
	// The user namespace's maps, written by Go between clone and exec,
	// and the ids the child switches to before it execs: root inside.
	// Setgroups stays allowed, so the child can drop the host's groups.
	attr.UidMappings = idMappings(uidMap)
	attr.GidMappings = idMappings(gidMap)
	attr.GidMappingsEnableSetgroups = true
	attr.Credential = &syscall.Credential{Uid: 0, Gid: 0}
	// The cgroup, made before the child so that it is limited from its
	// very first instruction.
	createCgroup(attr)

	runtime.LockOSThread()
	say("starting the child in new namespaces: %s", namespaceNames())
	if err := cmd.Start(); err != nil {
		removeCgroup()
		fail(exitSetup, "clone: %s", errText(err))
	}
	say("child started: pid %d on the host", cmd.Process.Pid)
	forwardSignals(cmd.Process)
	// The child has its own copy of the read end now.
	syncR.Close()
	showIDMaps(cmd.Process.Pid)
	if err := joinCgroup(cmd.Process.Pid); err != nil {
		abort(cmd, "cgroup: %s", errText(err))
	}
	if err := setupNetwork(cmd.Process.Pid); err != nil {
		abort(cmd, "network: %s", errText(err))
	}
	releaseChild(syncW)

	// The child's exit status becomes ours, as a shell would report it.
	err := cmd.Wait()
	status := exitStatus(cmd.ProcessState)
	if err != nil && cmd.ProcessState == nil {
		fail(exitSetup, "wait: %s", errText(err))
	}
	say("child exited with status %d", status)
	teardownNetwork()
	reportCgroup()
	removeCgroup()
	os.Exit(status)
}

// child runs inside the new namespaces. It sets up what each namespace
// needs, in order, and then replaces itself with the command.
func child(args []string) {
	if len(args) == 0 {
		fail(exitUsage, "no command given")
	}
	waitForHost()
	showIdentity()
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

// waitForHost blocks until the host has set up its side of our namespaces
// and writes "ok" on the pipe (file descriptor 3). Anything else, such
// as end-of-file because the host died, means we must not go on.
func waitForHost() {
	say("waiting for the host to set up our network")
	pipe := os.NewFile(3, "sync")
	msg, _ := io.ReadAll(pipe)
	pipe.Close()
	if string(msg) != "ok" {
		fail(exitSetup, "the host did not finish setting up our namespaces")
	}
}

// showIdentity narrates who we are now. Before it exec'd this program,
// Go's syscall package switched the child to uid and gid 0 of the user
// namespace (SysProcAttr.Credential, see idMappings): uid 100000 outside.
// As root of its own user namespace, it has every capability, but only
// over what that namespace owns. See user_namespaces(7).
func showIdentity() {
	say("uid %d, gid %d in the user namespace; capabilities: %s",
		os.Getuid(), os.Getgid(), capabilities("self"))
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

// idMappings turns --uid-map and --gid-map into the maps the kernel
// takes in /proc/PID/uid_map and gid_map. They are written after the
// clone, here from outside the new namespace (from inside, a process may
// map only its own uid), and must be there before the child execs: a
// program exec'd by a uid the namespace does not map gets no capabilities
// at all (see "Capabilities and execution of programs" in
// capabilities(7)). Only code between clone and exec can wait for them,
// and Go's syscall package does: with SysProcAttr.UidMappings, the parent
// writes the maps while the child waits on a pipe, and the child then
// switches to uid 0 (SysProcAttr.Credential) and execs.
// Equivalent to: echo 0 100000 65536 > /proc/PID/uid_map (and gid_map).
func idMappings(value string) []syscall.SysProcIDMap {
	// checkIDMaps has already made sure the value parses.
	var n [3]int
	for i, p := range strings.Split(value, ":") {
		n[i], _ = strconv.Atoi(p)
	}
	return []syscall.SysProcIDMap{{ContainerID: n[0], HostID: n[1], Size: n[2]}}
}

// showIDMaps reads the maps back from the host, with the capabilities
// the child has: all of them, but in its own user namespace only.
func showIDMaps(pid int) {
	for _, file := range []string{"uid_map", "gid_map"} {
		data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/%s", pid, file))
		fields := strings.Fields(string(data))
		say("/proc/%d/%s: %s", pid, file, strings.Join(fields, " "))
	}
	say("the child's capabilities seen from the host: %s",
		capabilities(strconv.Itoa(pid)))
}

// capabilities summarises the effective capability set of /proc/PID
// ("self" for us). The same set means different power in different user
// namespaces: full inside ours, none over the host. See capabilities(7).
func capabilities(pid string) string {
	data, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return "unknown"
	}
	for _, line := range strings.Split(string(data), "\n") {
		if hex, ok := strings.CutPrefix(line, "CapEff:\t"); ok {
			n, _ := strconv.ParseUint(hex, 16, 64)
			count := 0
			for ; n != 0; n &= n - 1 {
				count++
			}
			return fmt.Sprintf("CapEff %s (%d capabilities)", hex, count)
		}
	}
	return "unknown"
}

// setupNetwork builds the network of the child with host pid pid, from
// the host side: the bridge, a veth pair, an address and a route. The
// comments give the ip(8) command for each netlink(7) request.
func setupNetwork(pid int) error {
	// Runs of this step share the bridge; one at a time may change it.
	unlock, err := lockState()
	if err != nil {
		return err
	}
	defer unlock()

	bridge, err := ensureBridge()
	if err != nil {
		return err
	}
	if err := claimAddress(pid); err != nil {
		return err
	}

	// A veth pair is a cable with two ends: what goes in one comes out of
	// the other. The names include the child's pid, so runs never clash.
	// Equivalent to: ip link add vethNN-PID type veth peer name cethNN-PID
	hostVeth = fmt.Sprintf("veth%s-%d", step[:2], pid)
	peer := fmt.Sprintf("ceth%s-%d", step[:2], pid)
	say("creating the veth pair %s <-> %s", hostVeth, peer)
	veth := &netlink.Veth{PeerName: peer}
	veth.Name = hostVeth
	if err := netlink.LinkAdd(veth); err != nil {
		return fmt.Errorf("add veth pair %s: %w", hostVeth, err)
	}
	// Plug the host's end into the bridge and switch it on.
	// Equivalent to: ip link set vethNN-PID master gocellNN up
	if err := netlink.LinkSetMaster(veth, bridge); err != nil {
		return fmt.Errorf("put %s on %s: %w", hostVeth, bridgeName, err)
	}
	if err := netlink.LinkSetUp(veth); err != nil {
		return fmt.Errorf("set %s up: %w", hostVeth, err)
	}
	// Move the other end into the child's network namespace.
	// Equivalent to: ip link set cethNN-PID netns PID
	say("moving %s into the child's network namespace", peer)
	peerLink, err := netlink.LinkByName(peer)
	if err != nil {
		return fmt.Errorf("find %s: %w", peer, err)
	}
	if err := netlink.LinkSetNsPid(peerLink, pid); err != nil {
		return fmt.Errorf("move %s to pid %d: %w", peer, pid, err)
	}
	return configureInside(pid, peer)
}

// configureInside sets up the child's side, from the host, through a
// netlink socket opened in the child's network namespace (the netns
// library switches a locked thread there with setns(2) to open it).
// Equivalent to: nsenter --target PID --net ip ...
func configureInside(pid int, peer string) error {
	ns, err := netns.GetFromPid(pid)
	if err != nil {
		return fmt.Errorf("open network namespace of pid %d: %w", pid, err)
	}
	defer ns.Close()
	inside, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("netlink in pid %d: %w", pid, err)
	}
	defer inside.Close()

	// Equivalent to: ip link set cethNN-PID name eth0
	eth0, err := inside.LinkByName(peer)
	if err != nil {
		return fmt.Errorf("find %s inside: %w", peer, err)
	}
	if err := inside.LinkSetName(eth0, "eth0"); err != nil {
		return fmt.Errorf("rename %s to eth0: %w", peer, err)
	}
	// Equivalent to: ip addr add 10.77.5.N/24 dev eth0
	say("giving the child %s on eth0", address)
	if err := inside.AddrAdd(eth0, &netlink.Addr{IPNet: address}); err != nil {
		return fmt.Errorf("add %s to eth0: %w", address, err)
	}
	// A new network namespace's loopback is down: bring it up, and eth0.
	// Equivalent to: ip link set lo up && ip link set eth0 up
	lo, err := inside.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("find lo inside: %w", err)
	}
	for _, link := range []netlink.Link{lo, eth0} {
		if err := inside.LinkSetUp(link); err != nil {
			return fmt.Errorf("set %s up: %w", link.Attrs().Name, err)
		}
	}
	// Equivalent to: ip route add default via 10.77.5.1
	say("adding the child's default route via %s", gateway.IP)
	route := &netlink.Route{LinkIndex: eth0.Attrs().Index, Gw: gateway.IP}
	if err := inside.RouteAdd(route); err != nil {
		return fmt.Errorf("add default route via %s: %w", gateway.IP, err)
	}
	return nil
}

// ensureBridge returns the step's bridge, creating it with the subnet's
// first address when no run has yet.
func ensureBridge() (netlink.Link, error) {
	if link, err := netlink.LinkByName(bridgeName); err == nil {
		return link, checkBridgeAddress(link)
	}
	// Equivalent to: ip link add gocellNN type bridge
	say("creating the bridge %s with %s", bridgeName, gateway)
	bridge := &netlink.Bridge{}
	bridge.Name = bridgeName
	if err := netlink.LinkAdd(bridge); err != nil {
		return nil, fmt.Errorf("add bridge %s: %w", bridgeName, err)
	}
	// Equivalent to: ip addr add 10.77.5.1/24 dev gocellNN
	err := netlink.AddrAdd(bridge, &netlink.Addr{IPNet: gateway})
	if err != nil {
		netlink.LinkDel(bridge)
		return nil, fmt.Errorf("add %s to %s: %w", gateway, bridgeName, err)
	}
	// Equivalent to: ip link set gocellNN up
	if err := netlink.LinkSetUp(bridge); err != nil {
		netlink.LinkDel(bridge)
		return nil, fmt.Errorf("set %s up: %w", bridgeName, err)
	}
	return bridge, nil
}

// checkBridgeAddress refuses to share a bridge that another run set up
// with another subnet.
func checkBridgeAddress(bridge netlink.Link) error {
	addrs, err := listAddrs(bridge)
	if err != nil {
		return fmt.Errorf("addresses of %s: %w", bridgeName, err)
	}
	for _, a := range addrs {
		if a.IPNet.String() == gateway.String() {
			return nil
		}
	}
	return fmt.Errorf("bridge %s exists with other addresses %v; another "+
		"run uses another --subnet: use the same one, or wait for it to "+
		"end", bridgeName, addrs)
}

// claimAddress leases the first free address of the subnet for the child.
// A lease is a file named after the address, locked with flock(2) by
// this process. The kernel releases the lock when we exit, even when we
// are killed, so a lease can never outlive its run; a leftover file with
// no lock on it is simply free.
func claimAddress(pid int) error {
	ones, bits := gateway.Mask.Size()
	size := 1 << (bits - ones)
	// .0 is the network, .1 the bridge, the last one the broadcast address.
	for n := 2; n < size-1; n++ {
		ip := nthAddress(gateway, n)
		path := filepath.Join(stateDir, ip.String())
		f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
		if err != nil {
			return fmt.Errorf("lease %s: %w", ip, err)
		}
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err != nil {
			f.Close()
			continue // another run holds this one
		}
		fmt.Fprintf(f, "%d\n", pid)
		lease = f
		address = &net.IPNet{IP: ip, Mask: gateway.Mask}
		return nil
	}
	return fmt.Errorf("no free address left in %s", subnet)
}

// nthAddress is the n-th address of a network: 10.77.5.0/24 and 2 give
// 10.77.5.2.
func nthAddress(network *net.IPNet, n int) net.IP {
	base := network.IP.To4().Mask(network.Mask)
	v := uint32(base[0])<<24 | uint32(base[1])<<16 | uint32(base[2])<<8 |
		uint32(base[3])
	v += uint32(n)
	return net.IPv4(byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
}

// lockState takes the step's lock, a flock(2) on its state directory, and
// returns the function that releases it.
func lockState() (func(), error) {
	if err := os.MkdirAll(stateDir, 0o755); err != nil {
		return nil, fmt.Errorf("mkdir %s: %w", stateDir, err)
	}
	dir, err := os.Open(stateDir)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(dir.Fd()), unix.LOCK_EX); err != nil {
		dir.Close()
		return nil, fmt.Errorf("lock %s: %w", stateDir, err)
	}
	return func() { dir.Close() }, nil
}

// releaseChild tells the child that the host's set-up is done.
func releaseChild(w *os.File) {
	if _, err := w.Write([]byte("ok")); err != nil {
		say("could not release the child: %s", errText(err))
	}
	w.Close()
}

// teardownNetwork removes what setupNetwork made: the veth pair, the
// lease, and the bridge once no run uses it. The kernel would delete the
// veth pair by itself with the child's network namespace, but it does so
// in the background, a moment later; deleting it now leaves a clean host
// when we exit. Equivalent to: ip link del vethNN-PID
func teardownNetwork() {
	if hostVeth != "" {
		if link, err := netlink.LinkByName(hostVeth); err == nil {
			say("removing the veth pair %s", hostVeth)
			netlink.LinkDel(link)
		}
	}
	unlock, err := lockState()
	if err != nil {
		say("could not clean up the network: %s", errText(err))
		return
	}
	defer unlock()
	if lease != nil {
		os.Remove(lease.Name())
		lease.Close()
	}
	removeBridgeIfUnused()
}

// removeBridgeIfUnused deletes the bridge when nothing is plugged into it.
// Equivalent to: ip link del gocellNN
func removeBridgeIfUnused() {
	bridge, err := netlink.LinkByName(bridgeName)
	if err != nil {
		return
	}
	links, err := listLinks()
	if err != nil {
		return
	}
	for _, l := range links {
		if l.Attrs().MasterIndex == bridge.Attrs().Index {
			return // another run's veth is still on it
		}
	}
	say("removing the bridge %s, which no run uses any more", bridgeName)
	netlink.LinkDel(bridge)
}

// findCgroups reads the cgroup layout from a mountinfo text (see
// proc(5)): a mount of type cgroup2 is the unified tree; each mount of
// type cgroup is a v1 tree, whose mount options name its controllers.
//
//	v2:     /sys/fs/cgroup          cgroup2
//	v1:     /sys/fs/cgroup/memory   cgroup  rw,memory
//	hybrid: both, with the controllers on v1 and an empty cgroup2 at
//	        /sys/fs/cgroup/unified (systemd uses it to track services)
func findCgroups(mountinfo string) cgroupLayout {
	l := cgroupLayout{v1: map[string]string{}}
	for _, line := range strings.Split(mountinfo, "\n") {
		pre, post, ok := strings.Cut(line, " - ")
		f, g := strings.Fields(pre), strings.Fields(post)
		if !ok || len(f) < 5 || len(g) < 3 {
			continue
		}
		switch g[0] {
		case "cgroup2":
			l.unified = f[4]
		case "cgroup":
			for _, opt := range strings.Split(g[2], ",") {
				l.v1[opt] = f[4]
			}
		}
	}
	return l
}

// createCgroup makes this run's cgroup and writes the limits into it.
// A controller mounted as v1 gets a directory in its own tree, nested in
// the cgroup we run in; the others go in one directory of the v2 tree,
// where we pass the child to CLONE_INTO_CGROUP. See cgroups(7).
func createCgroup(attr *syscall.SysProcAttr) {
	// The cpuset controller only with --cpuset: on v1 its new cgroups
	// start with no CPUs, and must be given some before a task may join.
	if cpuset != "" {
		controllers = append(controllers, "cpuset")
	}
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		fail(exitSetup, "read mountinfo: %s", errText(err))
	}
	layout = findCgroups(string(data))
	name := fmt.Sprintf("%s-%d", step, os.Getpid())
	var onV2 []string
	for _, c := range controllers {
		if layout.v1[c] == "" {
			onV2 = append(onV2, c)
		}
	}
	if len(onV2) > 0 && layout.unified == "" {
		fail(exitSetup, "no cgroup tree has the %s controller(s); is "+
			"cgroup2 mounted at %s?", strings.Join(onV2, ", "), cgroupMount)
	}
	say("cgroup layout: %s", describeLayout(onV2))
	if err := makeCgroups(name, onV2); err != nil {
		removeCgroup()
		fail(exitSetup, "cgroup: %s", errText(err))
	}
	if len(onV2) > 0 {
		// The child starts inside the v2 cgroup: clone3(2) with
		// CLONE_INTO_CGROUP and a file descriptor of its directory.
		dir, err := os.Open(cgroupDirs[len(cgroupDirs)-1])
		if err != nil {
			removeCgroup()
			fail(exitSetup, "open cgroup: %s", errText(err))
		}
		attr.UseCgroupFD = true
		attr.CgroupFD = int(dir.Fd())
	}
}

// describeLayout names the layout for the narration.
func describeLayout(onV2 []string) string {
	switch {
	case len(onV2) == 0 && layout.unified != "":
		return "hybrid: the controllers are on v1, cgroup2 at " +
			layout.unified + " has none"
	case len(onV2) == 0:
		return "cgroup v1: a tree per controller"
	case len(onV2) == len(controllers):
		return "cgroup v2: one unified tree at " + layout.unified
	}
	return "mixed: " + strings.Join(onV2, ", ") + " on v2, the rest on v1"
}

// makeCgroups makes the directories and writes the limits: on v1 one
// directory per controller tree, on v2 one directory for the controllers
// in onV2. Every directory made is recorded for removeCgroup.
func makeCgroups(name string, onV2 []string) error {
	for _, c := range controllers {
		root := layout.v1[c]
		if root == "" {
			continue
		}
		// Nest under the cgroup this program runs in, so the limits of
		// whoever started us (a login session, a CI job) still apply.
		parent, err := ownCgroup(c)
		if err != nil {
			return err
		}
		dir := filepath.Join(root, parent, "gocell-lessons", name)
		if err := makeCgroupDir(dir); err != nil {
			return err
		}
		if err := writeLimitsV1(c, dir); err != nil {
			return err
		}
	}
	if len(onV2) == 0 {
		return nil
	}
	// On v2 a cgroup with processes cannot have children with controllers
	// ("no internal processes"), so this goes under the root, which is
	// exempt: /sys/fs/cgroup/gocell-lessons/NAME. Each level passes the
	// controllers down through cgroup.subtree_control.
	// Equivalent to: echo +memory +pids +cpu > cgroup.subtree_control
	enable := "+" + strings.Join(onV2, " +")
	parent := filepath.Join(layout.unified, "gocell-lessons")
	control := "cgroup.subtree_control"
	if err := writeCgroupFile(layout.unified, control, enable); err != nil {
		return err
	}
	if err := os.Mkdir(parent, 0o755); err != nil && !os.IsExist(err) {
		return err
	}
	if err := writeCgroupFile(parent, control, enable); err != nil {
		return err
	}
	dir := filepath.Join(parent, name)
	if err := makeCgroupDir(dir); err != nil {
		return err
	}
	return writeLimitsV2(dir, onV2)
}

// makeCgroupDir makes one cgroup: a mkdir in a cgroup file system, which
// the kernel fills with the controllers' files.
// Equivalent to: mkdir /sys/fs/cgroup/.../NAME
func makeCgroupDir(dir string) error {
	say("creating the cgroup %s", dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	cgroupDirs = append(cgroupDirs, dir)
	return nil
}

// ownCgroup reads, in /proc/self/cgroup, the cgroup this program is in
// on the v1 tree of a controller: a line such as "4:memory:/user.slice".
func ownCgroup(controller string) (string, error) {
	data, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(data), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			if c == controller {
				return parts[2], nil
			}
		}
	}
	return "/", nil
}

// writeLimitsV1 writes one controller's limit in its v1 files.
func writeLimitsV1(controller, dir string) error {
	switch {
	case controller == "memory" && memoryBytes > 0:
		// memsw (memory plus swap) no lower than the limit, so the limit
		// is not escaped into swap; it exists only with swap accounting.
		limit := strconv.FormatInt(memoryBytes, 10)
		err := writeCgroupFile(dir, "memory.limit_in_bytes", limit)
		if err != nil {
			return err
		}
		if exists(dir, "memory.memsw.limit_in_bytes") {
			return writeCgroupFile(dir, "memory.memsw.limit_in_bytes", limit)
		}
	case controller == "pids" && pidsMax > 0:
		max := strconv.FormatInt(pidsMax, 10)
		return writeCgroupFile(dir, "pids.max", max)
	case controller == "cpu" && cpuQuota > 0:
		period := strconv.Itoa(cpuPeriod)
		quota := strconv.FormatInt(cpuQuota, 10)
		err := writeCgroupFile(dir, "cpu.cfs_period_us", period)
		if err != nil {
			return err
		}
		return writeCgroupFile(dir, "cpu.cfs_quota_us", quota)
	case controller == "cpuset":
		return writeCPUSetV1(dir)
	}
	return nil
}

// writeCPUSetV1 pins the run to --cpuset's CPUs on v1. A new cpuset
// cgroup starts with no CPUs and no memory nodes, and no task may join
// it until it has both (the write to cgroup.procs fails with ENOSPC).
// So gocell-lessons, made empty too, first gets its parent's; then the
// run's cgroup gets its parent's memory nodes, and our CPUs, which must
// be among its parent's. See admin-guide/cgroup-v1/cpusets.rst.
func writeCPUSetV1(dir string) error {
	parent := filepath.Dir(dir)
	for _, file := range []string{"cpuset.cpus", "cpuset.mems"} {
		if err := fillFromParent(parent, file); err != nil {
			return err
		}
	}
	if err := fillFromParent(dir, "cpuset.mems"); err != nil {
		return err
	}
	return writeCgroupFile(dir, "cpuset.cpus", cpuset)
}

// fillFromParent gives an empty cpuset file of dir its parent's value.
// Equivalent to: cat ../cpuset.mems > cpuset.mems
func fillFromParent(dir, file string) error {
	data, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil || strings.TrimSpace(string(data)) != "" {
		return err
	}
	up, err := os.ReadFile(filepath.Join(filepath.Dir(dir), file))
	if err != nil {
		return err
	}
	return writeCgroupFile(dir, file, strings.TrimSpace(string(up)))
}

// writeLimitsV2 writes the limits in the v2 files of the controllers in
// onV2: memory.max, pids.max and cpu.max ("QUOTA PERIOD").
func writeLimitsV2(dir string, onV2 []string) error {
	for _, c := range onV2 {
		var err error
		switch {
		case c == "memory" && memoryBytes > 0:
			limit := strconv.FormatInt(memoryBytes, 10)
			err = writeCgroupFile(dir, "memory.max", limit)
			// No swap either, as on v1: memory.swap.max exists only
			// with swap accounting.
			if err == nil && exists(dir, "memory.swap.max") {
				err = writeCgroupFile(dir, "memory.swap.max", "0")
			}
		case c == "cpuset":
			// v2 fills a new cgroup's cpuset.cpus.effective from its
			// parent's; cpuset.cpus narrows it. Memory nodes, left
			// empty, stay the parent's.
			err = writeCgroupFile(dir, "cpuset.cpus", cpuset)
		case c == "pids" && pidsMax > 0:
			max := strconv.FormatInt(pidsMax, 10)
			err = writeCgroupFile(dir, "pids.max", max)
		case c == "cpu" && cpuQuota > 0:
			max := fmt.Sprintf("%d %d", cpuQuota, cpuPeriod)
			err = writeCgroupFile(dir, "cpu.max", max)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// exists reports whether dir has the file: some exist only on kernels
// built or booted with an option, such as swap accounting.
func exists(dir, file string) bool {
	_, err := os.Stat(filepath.Join(dir, file))
	return err == nil
}

// writeCgroupFile writes one value into a cgroup's file.
// Equivalent to: echo VALUE > DIR/FILE
func writeCgroupFile(dir, file, value string) error {
	path := filepath.Join(dir, file)
	say("echo %s > %s", value, path)
	if err := os.WriteFile(path, []byte(value), 0); err != nil {
		return fmt.Errorf("write %q to %s: %w", value, path, err)
	}
	return nil
}

// joinCgroup moves the child into its v1 cgroups, while it still waits
// on the pipe, by writing its pid into each cgroup.procs. (On v2 it was
// born there.) Equivalent to: echo PID > .../cgroup.procs
func joinCgroup(pid int) error {
	for _, dir := range cgroupDirs {
		if strings.HasPrefix(dir, layout.unified+"/") && layout.unified != "" {
			continue
		}
		err := writeCgroupFile(dir, "cgroup.procs", strconv.Itoa(pid))
		if err != nil {
			return err
		}
	}
	return nil
}

// reportCgroup tells which limits the kernel enforced during the run, from
// the counters the controllers keep: OOM kills, refused forks, and the
// periods in which the CPU quota ran out.
func reportCgroup() {
	for _, dir := range cgroupDirs {
		// v2: memory.events; v1: memory.oom_control. Both say oom_kill N.
		for _, file := range []string{"memory.events", "memory.oom_control"} {
			if n := counter(dir, file, "oom_kill"); n > 0 {
				say("memory limit hit: %d process(es) OOM-killed (%s)", n, file)
			}
		}
		if n := counter(dir, "pids.events", "max"); n > 0 {
			say("pids limit hit: %d fork(s) refused (pids.events)", n)
		}
		if n := counter(dir, "cpu.stat", "nr_throttled"); n > 0 {
			say("cpu limit hit: throttled in %d periods (cpu.stat)", n)
		}
	}
}

// counter reads "NAME N" from a cgroup file of such lines, or 0.
func counter(dir, file, name string) int64 {
	data, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == name {
			n, _ := strconv.ParseInt(f[1], 10, 64)
			return n
		}
	}
	return 0
}

// removeCgroup removes the run's cgroups, and the gocell-lessons
// directories above them once no run uses them. A cgroup can be removed
// only when it has no processes left; those of a finished container may
// still be exiting, so try for a moment. Equivalent to: rmdir DIR
func removeCgroup() {
	for i := len(cgroupDirs) - 1; i >= 0; i-- {
		dir := cgroupDirs[i]
		var err error
		for try := 0; try < 100; try++ {
			if err = unix.Rmdir(dir); err == nil || err == unix.ENOENT {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if err != nil && err != unix.ENOENT {
			say("could not remove the cgroup %s: %s", dir, errText(err))
			continue
		}
		say("removed the cgroup %s", dir)
		// The parent goes too if it is empty; if another run still has a
		// cgroup in it, rmdir fails with EBUSY and it stays.
		unix.Rmdir(filepath.Dir(dir))
	}
	cgroupDirs = nil
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

// checkSubnet parses --subnet and makes sure it cannot disturb the host:
// it must be IPv4, leave room for a few containers, and overlap none of
// the host's own networks (other than this step's bridge).
func checkSubnet() {
	ip, network, err := net.ParseCIDR(subnet)
	if err != nil || ip.To4() == nil {
		fail(exitSetup, "--subnet %q: not an IPv4 network in CIDR "+
			"notation, such as %s", subnet, defaultSubnet)
	}
	ones, _ := network.Mask.Size()
	if ones < 16 || ones > 29 {
		fail(exitSetup, "--subnet %s: the prefix length must be between "+
			"16 and 29", subnet)
	}
	gateway = &net.IPNet{IP: nthAddress(network, 1), Mask: network.Mask}
	addrs, err := listAddrs(nil)
	if err != nil {
		fail(exitSetup, "list the host's addresses: %s", errText(err))
	}
	for _, a := range addrs {
		link, _ := netlink.LinkByIndex(a.LinkIndex)
		if link != nil && link.Attrs().Name == bridgeName {
			continue
		}
		if network.Contains(a.IP) || a.IPNet.Contains(network.IP) {
			fail(exitSetup, "--subnet %s overlaps the host's network %s "+
				"on %s; pick another, such as %s", subnet, a.IPNet,
				linkName(link), defaultSubnet)
		}
	}
}

// checkIDMaps checks --uid-map and --gid-map, and that root inside owns
// the root file system: otherwise the container could not even make the
// directory pivot_root(2) needs in it.
func checkIDMaps() {
	for _, m := range []struct{ flag, value string }{
		{"--uid-map", uidMap},
		{"--gid-map", gidMap},
	} {
		if _, _, err := parseIDMap(m.value); err != nil {
			fail(exitSetup, "%s %q: %s; write INSIDE:OUTSIDE:COUNT, such "+
				"as %s", m.flag, m.value, err, defaultIDMap)
		}
	}
	var st unix.Stat_t
	if err := unix.Stat(rootfs, &st); err != nil {
		fail(exitSetup, "stat %s: %s", rootfs, errText(err))
	}
	_, rootUID, _ := parseIDMap(uidMap)
	_, rootGID, _ := parseIDMap(gidMap)
	if int(st.Uid) != rootUID || int(st.Gid) != rootGID {
		fail(exitSetup, "%s belongs to %d:%d on the host, but root inside "+
			"is %d:%d there and could not use it; make a root file system "+
			"for this map: sudo OWNER=%d:%d scripts/mkrootfs.sh DIR, and "+
			"pass --rootfs DIR", rootfs, st.Uid, st.Gid, rootUID, rootGID,
			rootUID, rootGID)
	}
}

// parseIDMap reads one INSIDE:OUTSIDE:COUNT range and returns where it
// starts inside, outside, and an error if it is not one.
func parseIDMap(value string) (int, int, error) {
	parts := strings.Split(value, ":")
	if len(parts) != 3 {
		return 0, 0, errors.New("not three numbers separated by colons")
	}
	var n [3]uint64
	for i, p := range parts {
		v, err := strconv.ParseUint(p, 10, 32)
		if err != nil {
			return 0, 0, fmt.Errorf("%q is not an id", p)
		}
		n[i] = v
	}
	if n[2] == 0 {
		return 0, 0, errors.New("the count must be at least 1")
	}
	if n[0]+n[2] > 1<<32-1 || n[1]+n[2] > 1<<32-1 {
		return 0, 0, errors.New("the range goes past the largest id")
	}
	if n[0] != 0 {
		return 0, 0, errors.New("the range must start at 0 inside, so " +
			"that the container has a root")
	}
	return int(n[0]), int(n[1]), nil
}

// checkLimits parses --memory, --pids, --cpus and --cpuset, before
// anything is made.
func checkLimits() {
	if memory != "" {
		n, err := parseSize(memory)
		if err != nil || n < minMemory {
			fail(exitSetup, "--memory %q: not a size of at least 16M; "+
				"write a number of bytes with K, M or G, such as 64M",
				memory)
		}
		memoryBytes = n
	}
	if pids != "" {
		n, err := strconv.ParseInt(pids, 10, 64)
		if err != nil || n < minPids {
			fail(exitSetup, "--pids %q: not a whole number of at least "+
				"%d (until it execs the command, the child is a Go program "+
				"whose threads count too)", pids, minPids)
		}
		pidsMax = n
	}
	if cpuset != "" {
		if err := checkCPUList(cpuset); err != nil {
			fail(exitSetup, "--cpuset %q: %s", cpuset, errText(err))
		}
	}
	if cpus != "" {
		f, err := strconv.ParseFloat(cpus, 64)
		if err != nil || f < 0.01 || f > float64(runtime.NumCPU()) {
			fail(exitSetup, "--cpus %q: not a number of CPUs between 0.01 "+
				"and %d, such as 0.5", cpus, runtime.NumCPU())
		}
		cpuQuota = int64(f * cpuPeriod)
	}
}

// parseSize reads a size such as 1048576, 512K, 64M or 1G (or lower
// case, with or without a final B).
func parseSize(s string) (int64, error) {
	digits := strings.TrimSuffix(strings.ToUpper(s), "B")
	mult := int64(1)
	for i, suffix := range []string{"K", "M", "G"} {
		if strings.HasSuffix(digits, suffix) {
			digits, mult = strings.TrimSuffix(digits, suffix), 1<<(10*(i+1))
			break
		}
	}
	n, err := strconv.ParseInt(digits, 10, 64)
	if err != nil || n <= 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("bad size %q", s)
	}
	return n * mult, nil
}

// checkCPUList checks a list of CPUs in the kernel's format, such as
// 0-2,4 (cpuset(7), "FORMATS"), against the CPUs that are online, which
// the kernel lists in the same format: the kernel itself would answer a
// CPU the machine does not have with EINVAL, and say no more.
func checkCPUList(list string) error {
	want, err := parseCPUList(list)
	if err != nil {
		return err
	}
	data, err := os.ReadFile("/sys/devices/system/cpu/online")
	if err != nil {
		return err
	}
	have := strings.TrimSpace(string(data))
	online, err := parseCPUList(have)
	if err != nil {
		return err
	}
	for cpu := range want {
		if !online[cpu] {
			return fmt.Errorf("CPU %d is not online; this machine "+
				"has %s", cpu, have)
		}
	}
	return nil
}

// parseCPUList reads a list such as 0-2,4 into the set of its CPUs.
func parseCPUList(list string) (map[int]bool, error) {
	cpus := map[int]bool{}
	for _, part := range strings.Split(list, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		if !isRange {
			hi = lo
		}
		a, err1 := strconv.Atoi(lo)
		b, err2 := strconv.Atoi(hi)
		if err1 != nil || err2 != nil || a < 0 || b < a || b > 4095 {
			return nil, fmt.Errorf("%q is not a CPU or a range of CPUs "+
				"such as 0 or 0-3", part)
		}
		for n := a; n <= b; n++ {
			cpus[n] = true
		}
	}
	return cpus, nil
}

// listLinks lists the host's network interfaces. A netlink list ("dump")
// is interrupted when the list changes meanwhile, which other runs make
// happen all the time; the library then returns ErrDumpInterrupted and
// partial results, and we ask again. Equivalent to: ip link
func listLinks() ([]netlink.Link, error) {
	for try := 1; ; try++ {
		links, err := netlink.LinkList()
		if !errors.Is(err, netlink.ErrDumpInterrupted) || try == 10 {
			return links, err
		}
	}
}

// listAddrs lists the IPv4 addresses of a link, or of all links when it
// is nil, asking again after an interrupted dump (see listLinks).
// Equivalent to: ip -4 addr
func listAddrs(link netlink.Link) ([]netlink.Addr, error) {
	for try := 1; ; try++ {
		addrs, err := netlink.AddrList(link, netlink.FAMILY_V4)
		if !errors.Is(err, netlink.ErrDumpInterrupted) || try == 10 {
			return addrs, err
		}
	}
}

// linkName is a link's name, or "?" when it is unknown.
func linkName(link netlink.Link) string {
	if link == nil {
		return "?"
	}
	return link.Attrs().Name
}

// abort stops a run whose host-side set-up failed after the child was
// started: it kills the child, removes what was made, and fails.
func abort(cmd *exec.Cmd, format string, args ...any) {
	cmd.Process.Kill()
	cmd.Wait()
	teardownNetwork()
	removeCgroup()
	fail(exitSetup, format, args...)
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

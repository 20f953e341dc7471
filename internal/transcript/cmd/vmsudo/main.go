// Command vmsudo is sudo in the VM that make transcripts records the
// chapters in: installed setuid root as /usr/bin/sudo, it runs a command
// as root the way sudo(8) does for the class VM's vagrant user, who may
// run anything without a password. It is not a sudo for anywhere else:
// it asks nothing and checks nothing.
//
//	sudo [-E] [NAME=VALUE ...] COMMAND [ARG ...]
//
// As sudo does, it starts from a small environment (TERM, and PATH set
// to the secure_path), adds SUDO_USER, SUDO_UID and SUDO_GID, keeps the
// caller's environment with -E, and applies NAME=VALUE words.
package main

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"strings"
	"syscall"
)

// securePath is sudo's secure_path on the class VM, Go first (see
// scripts/provision.sh).
const securePath = "/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

func main() {
	args := os.Args[1:]
	keep := false
	for len(args) > 0 && strings.HasPrefix(args[0], "-") {
		switch args[0] {
		case "-E", "--preserve-env":
			keep = true
		default:
			fail("sudo: option %s is not known to the VM's sudo", args[0])
		}
		args = args[1:]
	}
	uid, gid := os.Getuid(), os.Getgid()
	name := strconv.Itoa(uid)
	if u, err := user.LookupId(name); err == nil {
		name = u.Username
	}
	var env []string
	if keep {
		env = os.Environ()
	} else {
		env = []string{"HOME=/root", "USER=root", "LOGNAME=root", "SHELL=/bin/bash"}
		for _, v := range []string{"TERM", "LANG", "COLUMNS", "LINES"} {
			if val, ok := os.LookupEnv(v); ok {
				env = append(env, v+"="+val)
			}
		}
	}
	env = append(env, "PATH="+securePath, "SUDO_USER="+name,
		"SUDO_UID="+strconv.Itoa(uid), "SUDO_GID="+strconv.Itoa(gid))
	for len(args) > 0 && strings.Contains(args[0], "=") && !strings.HasPrefix(args[0], "=") {
		env = append(env, args[0])
		args = args[1:]
	}
	env = dedup(env)
	if len(args) == 0 {
		fail("usage: sudo [-E] [NAME=VALUE ...] COMMAND [ARG ...]")
	}
	if err := syscall.Setgroups([]int{0}); err != nil {
		fail("sudo: setgroups: %v (is it installed setuid root?)", err)
	}
	if err := syscall.Setresgid(0, 0, 0); err != nil {
		fail("sudo: setresgid: %v", err)
	}
	if err := syscall.Setresuid(0, 0, 0); err != nil {
		fail("sudo: setresuid: %v", err)
	}
	os.Setenv("PATH", securePath)
	path, err := exec.LookPath(args[0])
	if err != nil {
		fail("sudo: %s: command not found", args[0])
	}
	err = syscall.Exec(path, args, env)
	fail("sudo: %s: %v", args[0], err)
}

func fail(format string, a ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", a...)
	os.Exit(1)
}

// dedup keeps the last NAME=VALUE of each NAME: execve(2) passes them all,
// and getenv(3) would find the first.
func dedup(env []string) []string {
	last := map[string]int{}
	for i, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		last[k] = i
	}
	var out []string
	for i, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		if last[k] == i {
			out = append(out, kv)
		}
	}
	return out
}

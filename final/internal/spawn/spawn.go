// Package spawn holds what every process of a container is set up with
// before it executes its command, on the thread that will (package oci
// calls it): capabilities by name and their sets (caps.go), descriptors
// closed at execve(2); and OnThread, for work that changes the calling
// thread for good. Capabilities, the bounding set, no_new_privs and the
// seccomp filter belong to a thread, not a process (capabilities(7),
// seccomp(2)): execve keeps those of the thread that calls it.
package spawn

import (
	"runtime"

	"golang.org/x/sys/unix"
)

// OnThread runs fn on an OS thread of its own, locked to it, and returns
// fn's error. The thread is never the process's main thread, whose state
// /proc/PID/ns and /proc/PID/status show as the whole process's and
// which Go never ends; and it ends with fn: fn may change the thread
// (its namespaces, credentials, capabilities, filter) for good.
func OnThread(fn func() error) error {
	done := make(chan error)
	go func() {
		// Never unlocked: when this goroutine ends, Go ends its thread.
		runtime.LockOSThread()
		if unix.Gettid() == unix.Getpid() {
			// The main thread: hold it while another goroutine takes
			// another thread, then give it back unchanged.
			other := make(chan error)
			go func() {
				runtime.LockOSThread()
				other <- fn()
			}()
			err := <-other
			runtime.UnlockOSThread()
			done <- err
			return
		}
		done <- fn()
	}()
	return <-done
}

// prctl is prctl(2) on this thread.
func prctl(option int, arg uintptr) error {
	_, _, e := unix.RawSyscall6(unix.SYS_PRCTL, uintptr(option), arg, 0, 0, 0, 0)
	if e != 0 {
		return e
	}
	return nil
}

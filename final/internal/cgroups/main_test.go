package cgroups

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"testing"
	"time"
)

// envHelper makes the test binary a helper process that the tests put
// in a cgroup: "sleep", "spin" (burn CPU) or "alloc" (use more memory
// than any limit the tests set). A helper first waits for one byte on
// stdin, so that on v1 it is in its cgroup before it does anything.
const envHelper = "GOCELL_CGROUPS_HELPER"

// allocBytes is how much the "alloc" helper uses, far above the tests'
// memory limit and far below the test VM's memory.
const allocBytes = 256 << 20

func TestMain(m *testing.M) {
	if mode := os.Getenv(envHelper); mode != "" {
		os.Exit(helper(mode))
	}
	os.Exit(m.Run())
}

// helper runs the helper process.
func helper(mode string) int {
	if os.Getenv("GOCELL_CGROUPS_WAIT") == "1" {
		io.ReadFull(os.Stdin, make([]byte, 1))
	}
	switch mode {
	case "sleep":
		time.Sleep(time.Minute)
	case "spin":
		for start := time.Now(); time.Since(start) < time.Minute; {
		}
	case "alloc":
		// Touch every page: memory is charged when it is used, not when
		// it is mapped.
		var keep [][]byte
		for n := 0; n < allocBytes; n += 1 << 20 {
			b := make([]byte, 1<<20)
			for i := range b {
				b[i] = 1
			}
			keep = append(keep, b)
		}
		fmt.Println("survived with", len(keep), "MiB")
	default:
		fmt.Fprintln(os.Stderr, "unknown helper", mode)
		return 2
	}
	return 0
}

// helperCommand is this test binary as a helper in mode. It does not
// wait for stdin unless the test asks it to (see startIn).
func helperCommand(t *testing.T, mode string) *exec.Cmd {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), envHelper+"="+mode)
	cmd.Stderr = os.Stderr
	return cmd
}

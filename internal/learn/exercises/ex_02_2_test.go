//go:build learnercheck

package main

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gocell/gocell/internal/celltest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMain(m *testing.M) { celltest.Main(m, main) }

// TestInit: with --init, process 1 of the container is the step itself
// (its command line says "child"), the command is its child (not pid 2:
// the Go runtime's threads took the pids before it); an orphan that ends
// is reaped, not left a zombie.
func TestInit(t *testing.T) {
	celltest.RequirePriv(t)
	// The subshell starts sleep and exits: sleep's parent is gone, and
	// the kernel gives it to process 1, which must wait for it.
	c := celltest.Start(t, "run", "--init", "sh", "-c", "(sleep 0.2 &); echo ready; read line || true")
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", c.Pid))
	require.NoError(t, err)
	assert.Contains(t, strings.Split(string(cmdline), "\x00"), "child", "process 1 is the step, not the command")
	assert.Equal(t, 1, celltest.NSpid(t, c.Pid)[1])
	kids := celltest.Children(c.Pid)
	require.NotEmpty(t, kids, "the command is a child of process 1")
	cmdline, err = os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", kids[0]))
	require.NoError(t, err)
	assert.Equal(t, "sh", strings.Split(string(cmdline), "\x00")[0], "process 1's child is the command")
	time.Sleep(time.Second)
	for _, pid := range celltest.Children(c.Pid) {
		stat, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		s := string(stat)
		if i := strings.LastIndexByte(s, ')'); i > 0 && len(s) > i+2 {
			assert.NotEqual(t, "Z", s[i+2:i+3], "pid %d is a zombie: process 1 did not reap it", pid)
		}
	}
	c.Stop(t)
}

// TestInitStatus: the step exits with the command's status, through the
// init.
func TestInitStatus(t *testing.T) {
	celltest.RequirePriv(t)
	res := celltest.Run(t, "run", "-q", "--init", "sh", "-c", "exit 3")
	assert.Equal(t, 3, res.Code, res.Stderr)
}

//go:build learnercheck

package main

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/gocell/gocell/internal/celltest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMain(m *testing.M) { celltest.Main(m, main) }

// TestEnv: each --env KEY=VALUE is in the command's environment, as the
// kernel keeps it in /proc/PID/environ.
func TestEnv(t *testing.T) {
	celltest.RequirePriv(t)
	c := celltest.Start(t, append([]string{"run", "--env", "GREETING=hello there", "--env", "B=2"},
		celltest.ReadyCommand...)...)
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", c.Pid))
	require.NoError(t, err)
	env := strings.Split(string(data), "\x00")
	assert.Contains(t, env, "GREETING=hello there")
	assert.Contains(t, env, "B=2")
	assert.Contains(t, env, "HOSTNAME=gocell", "the rest of the environment is still there")
	c.Stop(t)
}

// TestBadEnv: --env without '=' is refused, exit 2, before any container.
func TestBadEnv(t *testing.T) {
	celltest.RequirePriv(t)
	res := celltest.Run(t, "run", "--env", "NOEQUALS", "true")
	assert.Equal(t, 2, res.Code, res.Stderr)
}

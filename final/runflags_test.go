package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gocell/gocell/internal/celltest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// capEff is the effective capability mask of pid, from its status.
func capEff(t *testing.T, pid int) uint64 {
	t.Helper()
	n, err := strconv.ParseUint(statusLine(t, pid, "CapEff:")[0], 16, 64)
	require.NoError(t, err)
	return n
}

// TestRunFlags: --entrypoint, --env-file, --read-only, --tmpfs,
// --cap-add/--cap-drop, --add-host and --label, each checked from
// outside where it can be (mountinfo, /proc/PID/status, the files).
func TestRunFlags(t *testing.T) {
	e := setup(t)
	res := gocell(t, "run", "--rm", "--network", "none", "--entrypoint", "/bin/echo", e.image, "from", "echo")
	require.Equal(t, 0, res.Code, res.Stderr)
	assert.Equal(t, "from echo\n", res.Stdout)

	envFile := filepath.Join(t.TempDir(), "env")
	require.NoError(t, os.WriteFile(envFile, []byte("# a comment\nA=1\n\nB=two words\nFROM_HOST\nC=file\n"), 0o644))
	t.Setenv("FROM_HOST", "host value")
	res = gocell(t, "run", "--rm", "--network", "none", "--env-file", envFile, "-e", "C=flag", "-e", "D=a,b", e.image,
		"sh", "-c", `echo "$A|$B|$FROM_HOST|$C|$D"`)
	require.Equal(t, 0, res.Code, res.Stderr)
	assert.Equal(t, "1|two words|host value|flag|a,b\n", res.Stdout, "-e wins over --env-file; a comma stays")
	res = gocell(t, "run", "--rm", "--network", "none", "--cap-add", "ALL", e.image, "true")
	assert.Equal(t, 0, res.Code, "--cap-add ALL: what this machine may give: %s", res.Stderr)

	res = gocell(t, "run", "-d", "--name", "ro", "--network", "none", "--read-only", "--tmpfs", "/data:size=1m,mode=0750",
		"--cap-add", "net_admin", "--cap-drop", "CAP_CHOWN", "--add-host", "db:10.1.2.3", "-l", "team=blue",
		e.image, "sleep", "1000")
	require.Equal(t, 0, res.Code, res.Stderr)
	pid := pidOf(t, "ro")
	mounts := map[string]celltest.Mount{}
	for _, m := range celltest.Mounts(t, strconv.Itoa(pid)) {
		mounts[m.MountPoint] = m
	}
	assert.Contains(t, ","+mounts["/"].Options+",", ",ro,", "the root is read-only")
	for _, p := range []string{"/tmp", "/run", "/data"} {
		assert.Equal(t, "tmpfs", mounts[p].FSType, p)
		assert.Contains(t, ","+mounts[p].Options+",", ",rw,", p)
	}
	assert.Contains(t, mounts["/data"].Options, "noexec")
	assert.Contains(t, mounts["/data"].Super, "size=1024k")
	assert.Contains(t, mounts["/data"].Super, "mode=750", "the comma did not split the flag")
	res = gocell(t, "exec", "ro", "touch", "/x")
	assert.NotEqual(t, 0, res.Code)
	assert.Contains(t, res.Stderr, "Read-only file system")
	assert.Equal(t, 0, gocell(t, "exec", "ro", "touch", "/tmp/x", "/data/y").Code)
	caps := capEff(t, pid)
	assert.NotZero(t, caps&(1<<12), "CAP_NET_ADMIN added")
	assert.Zero(t, caps&(1<<0), "CAP_CHOWN dropped")
	assert.NotZero(t, caps&(1<<5), "CAP_KILL kept")
	res = gocell(t, "exec", "ro", "chown", "1:1", "/tmp/x")
	assert.NotEqual(t, 0, res.Code, "no CAP_CHOWN")
	hosts, err := os.ReadFile(fmt.Sprintf("/proc/%d/root/etc/hosts", pid))
	require.NoError(t, err)
	assert.Contains(t, string(hosts), "10.1.2.3\tdb\n")
	assert.Equal(t, "blue\n", gocell(t, "inspect", "-f", `{{index .Spec.Labels "team"}}`, "ro").Stdout)

	for _, bad := range []struct {
		want string
		args []string
	}{
		{"--restart \"sometimes\"", []string{"--restart", "sometimes"}},
		{"cannot start again", []string{"--restart", "always", "--rm"}},
		{"unknown capability \"BOGUS\"", []string{"--cap-add", "BOGUS"}},
		{"--tmpfs \"data\": the path must be absolute", []string{"--tmpfs", "data"}},
		{"option \"suid=1\" is not one of tmpfs(5)'s", []string{"--tmpfs", "/d:suid=1"}},
		{"--add-host \"db\": write NAME:IP", []string{"--add-host", "db"}},
		{"--env-file /no/such/file", []string{"--env-file", "/no/such/file"}},
		{"--stop-signal \"NOPE\"", []string{"--stop-signal", "NOPE"}},
		{"--label \"=x\"", []string{"--label", "=x"}},
	} {
		before := celltest.Snapshot(t)
		res := gocell(t, append(append([]string{"run", "--network", "none"}, bad.args...), e.image, "true")...)
		assert.Equal(t, 2, res.Code, "%v: %s", bad.args, res.Stderr)
		assert.Contains(t, res.Stderr, bad.want, bad.args)
		assert.Equal(t, 1, strings.Count(res.Stderr, "error:"), res.Stderr)
		celltest.AssertMountsUnchanged(t, before)
	}
}

// TestStopSignalAndRestart: --stop-signal and --stop-timeout shape stop;
// --restart starts a container again as its policy says, counts it, and
// never undoes a stop.
func TestStopSignalAndRestart(t *testing.T) {
	e := setup(t)
	res := gocell(t, "run", "-d", "--name", "polite", "--network", "none", "--stop-signal", "SIGINT",
		e.image, "sh", "-c", `trap "echo got INT; exit 3" INT; echo ready; while :; do sleep 0.1; done`)
	require.Equal(t, 0, res.Code, res.Stderr)
	require.Eventually(t, func() bool { return gocell(t, "logs", "polite").Stdout == "ready\n" }, 10*time.Second, 20*time.Millisecond)
	require.Equal(t, 0, gocell(t, "stop", "polite").Code)
	assert.Equal(t, "3\n", gocell(t, "wait", "polite").Stdout, "SIGINT, trapped")
	assert.Equal(t, "ready\ngot INT\n", gocell(t, "logs", "polite").Stdout)

	res = gocell(t, "run", "-d", "--name", "deaf", "--network", "none", "--stop-timeout", "1", e.image, "sleep", "1000")
	require.Equal(t, 0, res.Code, res.Stderr)
	start := time.Now()
	require.Equal(t, 0, gocell(t, "stop", "deaf").Code)
	assert.Less(t, time.Since(start), 6*time.Second, "killed after its 1 s, not the default 10")
	assert.Equal(t, "137\n", gocell(t, "wait", "deaf").Stdout)

	// on-failure:2 — two restarts, then it stays down.
	res = gocell(t, "run", "-d", "--name", "flaky", "--network", "none", "--restart", "on-failure:2", e.image, "sh", "-c", "echo run; exit 1")
	require.Equal(t, 0, res.Code, res.Stderr)
	// The count goes up just before each restart's start: done means
	// three runs logged, and the last one ended.
	require.Eventually(t, func() bool {
		st := state(t, "flaky")
		return st["restartCount"] == float64(2) && st["status"] == "exited" && st["monitor"] == nil &&
			gocell(t, "logs", "flaky").Stdout == "run\nrun\nrun\n"
	}, 30*time.Second, 50*time.Millisecond, "restarted twice, then left")
	time.Sleep(time.Second)
	assert.Equal(t, float64(2), state(t, "flaky")["restartCount"], "no third restart")
	assert.Equal(t, "run\nrun\nrun\n", gocell(t, "logs", "flaky").Stdout, "three runs in one log, no fourth")

	// always — restarted after a clean exit; a stop is final.
	res = gocell(t, "run", "-d", "--name", "forever", "--network", "none", "--restart", "always", e.image, "sh", "-c", "sleep 0.3")
	require.Equal(t, 0, res.Code, res.Stderr)
	require.Eventually(t, func() bool {
		n, _ := state(t, "forever")["restartCount"].(float64)
		return n >= 2
	}, 20*time.Second, 50*time.Millisecond)
	require.Equal(t, 0, gocell(t, "stop", "-t", "1", "forever").Code)
	time.Sleep(1500 * time.Millisecond)
	st := state(t, "forever")
	assert.Equal(t, "exited", st["status"], "stopped stays stopped")
	assert.Equal(t, true, st["stopRequested"])
	n := st["restartCount"]
	time.Sleep(time.Second)
	assert.Equal(t, n, state(t, "forever")["restartCount"])
	// A start by the user starts afresh.
	require.Equal(t, 0, gocell(t, "start", "forever").Code)
	assert.Nil(t, state(t, "forever")["stopRequested"])
	// rm -f while it restarts over and over: nothing of it is left,
	// no cgroup made by a restart racing the removal.
	id := state(t, "forever")["id"].(string)
	time.Sleep(700 * time.Millisecond)
	require.Equal(t, 0, gocell(t, "rm", "-f", "forever").Code)
	time.Sleep(7 * time.Second) // the longest wait of the policy, and more
	assertNoCgroups(t, []string{id})
	assert.Equal(t, 125, gocell(t, "inspect", "forever").Code)
}

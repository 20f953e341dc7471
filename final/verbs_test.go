package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gocell/gocell/internal/celltest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// TestLogsOptions: --tail, -t and --since pick lines of the log, each
// line to its stream; bad values are refused with one line.
func TestLogsOptions(t *testing.T) {
	e := setup(t)
	res := gocell(t, "run", "-d", "--name", "talker", "--network", "none", e.image,
		"sh", "-c", "echo one; echo two >&2; echo three; sleep 1000")
	require.Equal(t, 0, res.Code, res.Stderr)
	require.Eventually(t, func() bool { return strings.Contains(gocell(t, "logs", "talker").Stdout, "three") },
		10*time.Second, 20*time.Millisecond)
	// stdout and stderr are copied at once, so "two" may be logged
	// before "three" or after: count lines, across both streams.
	lines := func(r celltest.Result) int { return strings.Count(r.Stdout+r.Stderr, "\n") }
	res = gocell(t, "logs", "--tail", "1", "talker")
	assert.Equal(t, 1, lines(res), "%q %q", res.Stdout, res.Stderr)
	res = gocell(t, "logs", "-n", "2", "talker")
	assert.Equal(t, 2, lines(res), "%q %q", res.Stdout, res.Stderr)
	res = gocell(t, "logs", "--tail", "all", "talker")
	assert.Equal(t, "one\nthree\n", res.Stdout)
	assert.Equal(t, "two\n", res.Stderr)
	res = gocell(t, "logs", "-t", "talker")
	stamp := `\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z `
	assert.Regexp(t, "^"+stamp+"one\n"+stamp+"three\n$", res.Stdout)
	assert.Equal(t, "one\nthree\n", gocell(t, "logs", "--since", "1h", "talker").Stdout)
	future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	assert.Equal(t, "", gocell(t, "logs", "--since", future, "talker").Stdout)
	for _, bad := range [][]string{{"--tail", "x"}, {"--tail", "-3"}, {"--since", "yesterday"}} {
		res := gocell(t, append(append([]string{"logs"}, bad...), "talker")...)
		assert.Equal(t, 2, res.Code, "%v: %s", bad, res.Stderr)
		assert.Equal(t, 1, strings.Count(res.Stderr, "error:"), res.Stderr)
	}
}

// TestDiff: diff reports what the upper directory holds, checked there
// from outside: a whiteout for the deleted file, and the added and
// changed paths.
func TestDiff(t *testing.T) {
	e := setup(t)
	res := gocell(t, "run", "-d", "--name", "changer", "--network", "none", e.image, "sleep", "1000")
	require.Equal(t, 0, res.Code, res.Stderr)
	id := strings.TrimSpace(res.Stdout)
	res = gocell(t, "exec", "changer", "sh", "-c", "mkdir /newdir && echo hi > /newdir/f && echo x >> /etc/group && rm /bin/vi")
	require.Equal(t, 0, res.Code, res.Stderr)
	res = gocell(t, "diff", "changer")
	require.Equal(t, 0, res.Code, res.Stderr)
	for _, want := range []string{"C /bin\n", "D /bin/vi\n", "C /etc\n", "C /etc/group\n", "A /newdir\n", "A /newdir/f\n"} {
		assert.Contains(t, res.Stdout, want)
	}
	assert.NotContains(t, res.Stdout, "/etc/resolv.conf", "a mount point of the runtime's, not a change")
	upper := filepath.Join(e.root, "containers", id, "upper")
	var st unix.Stat_t
	require.NoError(t, unix.Lstat(filepath.Join(upper, "bin", "vi"), &st))
	assert.Equal(t, uint32(unix.S_IFCHR), st.Mode&unix.S_IFMT, "a whiteout in the upper directory")
	assert.FileExists(t, filepath.Join(upper, "newdir", "f"))
	// A symlink the container makes, to a host path, is listed, never
	// followed: diff looks only at the upper directory and the image.
	res = gocell(t, "exec", "changer", "ln", "-s", "/etc/shadow", "/etc/group2")
	require.Equal(t, 0, res.Code, res.Stderr)
	assert.Contains(t, gocell(t, "diff", "changer").Stdout, "A /etc/group2\n")
	// A symlink to / in the upper directory is listed, never walked.
	res = gocell(t, "exec", "changer", "ln", "-s", "/", "/rootlink")
	require.Equal(t, 0, res.Code, res.Stderr)
	res = gocell(t, "diff", "changer")
	assert.Contains(t, res.Stdout, "A /rootlink\n")
	assert.NotContains(t, res.Stdout, "/rootlink/")
	res = gocell(t, "diff", "nosuch")
	assert.Equal(t, 125, res.Code)
	assert.Contains(t, res.Stderr, "no such container: nosuch")
}

// TestTopWaitRenameRestart: top lists the container's processes with
// their host pids; rename and restart keep the container; wait prints
// the exit code.
func TestTopWaitRenameRestart(t *testing.T) {
	e := setup(t)
	res := gocell(t, "run", "-d", "--name", "first", "--network", "none", e.image, "sh", "-c", "echo started; sleep 1000")
	require.Equal(t, 0, res.Code, res.Stderr)
	pid := pidOf(t, "first")
	res = gocell(t, "top", "first")
	require.Equal(t, 0, res.Code, res.Stderr)
	assert.Regexp(t, fmt.Sprintf(`(?m)^\s*(\S+\s+)?%d\s`, pid), res.Stdout, "the host's pid, as ps shows it")
	assert.NotContains(t, res.Stdout, "gocell", "only the container's processes")
	assert.Contains(t, res.Stdout, "sleep 1000")
	res = gocell(t, "top", "first", "-o", "pid,comm")
	require.Equal(t, 0, res.Code, res.Stderr)
	assert.Regexp(t, `^\s*PID\s+COMMAND\n`, res.Stdout)
	assert.Equal(t, 2, strings.Count(res.Stdout, "\n"), "the header and the one process: %s", res.Stdout)

	require.Equal(t, 0, gocell(t, "run", "-d", "--name", "other", "--network", "none", e.image, "sleep", "1000").Code)
	res = gocell(t, "rename", "first", "other")
	assert.Equal(t, 125, res.Code)
	assert.Contains(t, res.Stderr, `name already in use: "other"`)
	res = gocell(t, "rename", "first", "bad/name")
	assert.Equal(t, 2, res.Code)
	require.Equal(t, 0, gocell(t, "rename", "first", "second").Code)
	assert.Equal(t, pid, pidOf(t, "second"), "the same container, renamed")
	assert.Equal(t, 125, gocell(t, "inspect", "first").Code)

	// On the network, a container started after finds it by its new
	// name.
	require.Equal(t, 0, gocell(t, "run", "-d", "--name", "onnet", e.image, "sleep", "1000").Code)
	require.Equal(t, 0, gocell(t, "rename", "onnet", "renamed").Code)
	res = gocell(t, "run", "--rm", e.image, "cat", "/etc/hosts")
	require.Equal(t, 0, res.Code, res.Stderr)
	ip := state(t, "renamed")["endpoint"].(map[string]any)["ip"].(string)
	assert.Contains(t, res.Stdout, ip+"\trenamed\n")
	assert.NotContains(t, res.Stdout, "onnet")

	res = gocell(t, "restart", "-t", "0", "second")
	require.Equal(t, 0, res.Code, res.Stderr)
	assert.Equal(t, "second\n", res.Stdout)
	newPid := pidOf(t, "second")
	assert.NotEqual(t, pid, newPid, "a new process")
	assert.True(t, procGone(pid), "the old one is gone")
	require.Eventually(t, func() bool { return gocell(t, "logs", "second").Stdout == "started\nstarted\n" },
		10*time.Second, 20*time.Millisecond, "two starts in one log")

	require.Equal(t, 0, gocell(t, "run", "-d", "--name", "quitter", "--network", "none", e.image, "sh", "-c", "sleep 1; exit 3").Code)
	start := time.Now()
	res = gocell(t, "wait", "quitter")
	require.Equal(t, 0, res.Code, res.Stderr)
	assert.Equal(t, "3\n", res.Stdout)
	assert.Greater(t, time.Since(start), 500*time.Millisecond, "it waited")
	assert.Equal(t, "exited", state(t, "quitter")["status"])
	assert.Equal(t, "3\n", gocell(t, "wait", "quitter").Stdout, "a stopped container at once")
	require.Equal(t, 0, gocell(t, "run", "-d", "--rm", "--name", "gone", "--network", "none", e.image, "true").Code)
	res = gocell(t, "restart", "gone")
	assert.NotEqual(t, 0, res.Code)
}

// TestHistory: history lists how an image was built; a committed image
// has the commit on top, with the size of its layer.
func TestHistory(t *testing.T) {
	e := setup(t)
	res := gocell(t, "history", e.image)
	require.Equal(t, 0, res.Code, res.Stderr)
	lines := strings.Split(strings.TrimSpace(res.Stdout), "\n")
	require.GreaterOrEqual(t, len(lines), 2)
	assert.Regexp(t, `^IMAGE\s+CREATED\s+CREATED BY\s+SIZE\s+COMMENT$`, lines[0])
	assert.Regexp(t, `^[0-9a-f]{12}\s`, lines[1], "the image's own ID on the newest step")
	assert.Regexp(t, `\d(\.\d)?MB`, res.Stdout, "busybox's layer, unpacked")
	require.Equal(t, 0, gocell(t, "run", "--name", "maker", "--network", "none", e.image, "sh", "-c", "echo made > /made").Code)
	require.Equal(t, 0, gocell(t, "commit", "maker", "class/made:1").Code)
	res = gocell(t, "history", "class/made:1")
	require.Equal(t, 0, res.Code, res.Stderr)
	lines = strings.Split(strings.TrimSpace(res.Stdout), "\n")
	assert.Contains(t, lines[1], "gocell commit")
	m := regexp.MustCompile(`(\d+)B\s*$`).FindStringSubmatch(lines[1])
	if assert.NotNil(t, m, lines[1]) {
		n, _ := strconv.Atoi(m[1])
		assert.Greater(t, n, 0)
	}
	res = gocell(t, "history", "nosuch:1")
	assert.Equal(t, 125, res.Code)
	_ = os.Getpid
}

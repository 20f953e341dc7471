// Package completion checks gocell's bash completion the way a person
// meets it: typed into bash in a tmux terminal, with Tab. It runs on the
// host only (the test VM has no tmux); scripts/provision.sh installs tmux
// and bash-completion, and .ci/run provisions first.
package completion

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gocell/gocell/internal/celltest"
	"github.com/gocell/gocell/internal/testimage"
	"github.com/stretchr/testify/require"
)

// terminal is a bash in a tmux session of its own (its own server
// socket, so nothing of the user's tmux is touched).
type terminal struct {
	t    *testing.T
	sock string
}

func (term *terminal) tmux(args ...string) string {
	term.t.Helper()
	out, err := exec.Command("tmux", append([]string{"-S", term.sock}, args...)...).CombinedOutput()
	require.NoError(term.t, err, "tmux %v: %s", args, out)
	return string(out)
}

// typeKeys types text, then the keys (such as Tab), into the terminal.
func (term *terminal) typeKeys(text string, keys ...string) {
	term.t.Helper()
	if text != "" {
		term.tmux("send-keys", "-t", "t", "-l", text)
	}
	for _, k := range keys {
		term.tmux("send-keys", "-t", "t", k)
	}
}

// waitLine waits until the terminal's last line is want (trailing
// spaces, such as the one a finished completion adds, left out).
func (term *terminal) waitLine(want string) {
	term.t.Helper()
	var last string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		lines := strings.Split(strings.TrimRight(term.tmux("capture-pane", "-p", "-t", "t"), "\n"), "\n")
		last = strings.TrimRight(lines[len(lines)-1], " ")
		if last == want {
			return
		}
	}
	term.t.Fatalf("the terminal's line is %q, not %q", last, want)
}

// clear wipes the typed line (Ctrl-U) for the next try.
func (term *terminal) clear() {
	term.typeKeys("", "C-u")
	term.waitLine("$")
}

// TestBashCompletion: in bash, with `source <(gocell completion bash)`,
// Tab completes commands, flags, and the names of the store's containers
// and images.
func TestBashCompletion(t *testing.T) {
	celltest.RequirePriv(t)
	for _, p := range []string{"tmux", "bash", "go"} {
		if _, err := exec.LookPath(p); err != nil {
			t.Fatalf("%s is not installed (sudo scripts/provision.sh installs it)", p)
		}
	}
	dir := t.TempDir()
	build := exec.Command("go", "build", "-o", filepath.Join(dir, "gocell"), "github.com/gocell/gocell/final")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "%s", out)
	root := filepath.Join(dir, "root")
	gocell := func(args ...string) {
		t.Helper()
		cmd := exec.Command(filepath.Join(dir, "gocell"), append([]string{"--root", root, "--config", filepath.Join(dir, "none.json")}, args...)...)
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "gocell %v: %s", args, out)
	}
	ref := testimage.Push(t, testimage.Registry(t), "test/busybox:1", testimage.BusyboxImage(t))
	gocell("pull", ref)
	gocell("tag", ref, "completeimg:7")
	gocell("create", "--name", "completeme", "--network", "none", "completeimg:7", "true")
	t.Cleanup(func() { gocell("rm", "-f", "completeme") })

	term := &terminal{t: t, sock: filepath.Join(dir, "tmux.sock")}
	term.tmux("-f", "/dev/null", "new-session", "-d", "-s", "t", "-x", "150", "-y", "20",
		"env", "-i", "PATH="+dir+":/usr/sbin:/usr/bin:/sbin:/bin", "GOCELL_ROOT="+root, "PS1=$ ", "TERM=xterm",
		"bash", "--norc", "--noprofile")
	t.Cleanup(func() { exec.Command("tmux", "-S", term.sock, "kill-server").Run() })
	term.waitLine("$")
	term.typeKeys("source <(gocell completion bash)", "Enter")
	term.waitLine("$")

	for _, tc := range []struct{ typed, want string }{
		{"gocell resta", "$ gocell restart"},                 // a command
		{"gocell run --pids-l", "$ gocell run --pids-limit"}, // a flag
		{"gocell start compl", "$ gocell start completeme"},  // a container
		{"gocell history complete", "$ gocell history completeimg:7"},
		{"gocell network insp", "$ gocell network inspect"}, // a subcommand
		{"gocell --root " + root + " rm comp", "$ gocell --root " + root + " rm completeme"},
	} {
		term.typeKeys(tc.typed, "Tab")
		term.waitLine(tc.want)
		term.clear()
	}
}

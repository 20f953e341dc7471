package transcript

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/gocell/gocell/internal/celltest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const chapter = "# A chapter\n\n" +
	"<!-- transcript: one -->\n```console\n$ echo hello\nstale output\n$ echo $((6*7))\n```\n\n" +
	"Prose.\n\n" +
	"<!-- transcript: inner prompt=\"in> \" -->\n```console\n$ env PS1='in> ' busybox sh\n" +
	"in> echo inside; echo $$ > /tmp/transcript-test.pid\nin> exit 3\n$ echo status $?\n```\n\n" +
	"<!-- transcript: bg until=\"started\" -->\n```console\n$ sh -c 'echo started; exec sleep 1013'\n```\n\n" +
	"<!-- transcript: look term=2 set=\"P=pgrep -f '^sleep 1013'\" -->\n```console\n$ P=1\n$ grep -c sleep /proc/$P/comm\n$ kill -TERM $P\n```\n\n" +
	"<!-- transcript: bg-end wait -->\n```console\nold\n```\n\n" +
	"<!-- recorded: elsewhere, on purpose -->\n```console\n$ anything\n```\n\n" +
	"```console\n$ unmarked\n```\n"

func TestParse(t *testing.T) {
	blocks, unmarked, err := Parse([]byte(chapter))
	require.NoError(t, err)
	require.Len(t, blocks, 5)
	assert.Equal(t, []Unmarked{{Line: 42}}, unmarked)
	assert.Equal(t, []Command{{"$ ", "echo hello"}, {"$ ", "echo $((6*7))"}}, blocks[0].Commands())
	assert.Equal(t, "in> ", blocks[1].Prompt())
	assert.Equal(t, []Command{{"$ ", "env PS1='in> ' busybox sh"}, {"in> ", "echo inside; echo $$ > /tmp/transcript-test.pid"},
		{"in> ", "exit 3"}, {"$ ", "echo status $?"}}, blocks[1].Commands())
	assert.Equal(t, "2", blocks[3].Term())
	assert.Equal(t, []string{"P=pgrep -f '^sleep 1013'"}, blocks[3].Directives["set"])
	assert.Contains(t, blocks[4].Directives, "wait")

	for _, bad := range []string{"<!-- transcript: x bogus -->", "<!-- transcript: x term -->",
		"<!-- transcript: x wait=1 -->", "<!-- transcript: x set=\"unended -->"} {
		_, _, err := Parse([]byte(bad + "\n```console\n$ true\n```\n"))
		assert.Error(t, err, bad)
	}
	_, _, err = Parse([]byte("<!-- transcript: x -->\n```console\n$ a\n```\n<!-- transcript: x -->\n```console\n$ b\n```\n"))
	assert.ErrorContains(t, err, "a second transcript named x")
}

func TestSplice(t *testing.T) {
	blocks, _, err := Parse([]byte(chapter))
	require.NoError(t, err)
	rec := Chapter{File: "x.md"}
	for _, b := range blocks {
		rec.Blocks = append(rec.Blocks, Block{Name: b.Name, Text: "new " + b.Name + "\nline 2"})
	}
	out, err := Splice([]byte(chapter), rec)
	require.NoError(t, err)
	again, _, err := Parse(out)
	require.NoError(t, err)
	for i, b := range again {
		assert.Equal(t, "new "+blocks[i].Name+"\nline 2", b.Text)
	}
	assert.Contains(t, string(out), "Prose.\n")
	assert.Contains(t, string(out), "$ unmarked\n")
	rec.Blocks = rec.Blocks[1:]
	_, err = Splice([]byte(chapter), rec)
	assert.ErrorContains(t, err, "no recording of one")

	// An empty block (a wait block never recorded yet) gets its lines,
	// and a block recorded as nothing becomes empty again.
	empty := "a\n<!-- transcript: w wait -->\n```console\n```\nb\n"
	out, err = Splice([]byte(empty), Chapter{Blocks: []Block{{Name: "w", Text: "x\ny"}}})
	require.NoError(t, err)
	assert.Equal(t, "a\n<!-- transcript: w wait -->\n```console\nx\ny\n```\nb\n", string(out))
	out, err = Splice(out, Chapter{Blocks: []Block{{Name: "w", Text: ""}}})
	require.NoError(t, err)
	assert.Equal(t, empty, string(out))
}

// TestRecord plays the chapter above in real terminals: as nobody, with
// a shell inside a shell, a command left running in terminal 1 and
// stopped from terminal 2, and checks what each block shows, and that
// nothing it started is left.
func TestRecord(t *testing.T) {
	celltest.RequirePriv(t)
	if _, err := exec.LookPath("busybox"); err != nil {
		t.Fatal("busybox is needed (busybox-static)")
	}
	blocks, _, err := Parse([]byte(chapter))
	require.NoError(t, err)
	r := &Recorder{
		Opts: Options{Dir: "/", UID: 65534, GID: 65534, Timeout: 30 * time.Second,
			Env: []string{"HOME=/", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"}},
		Root: func(cmd string) (string, error) {
			out, err := exec.Command("sh", "-c", cmd).Output()
			return string(out), err
		},
	}
	got, err := r.Record("x.md", blocks)
	require.NoError(t, err)
	require.Len(t, got, 5)
	assert.Equal(t, "$ echo hello\nhello\n$ echo $((6*7))\n42", got[0].Text)
	pid, err := os.ReadFile("/tmp/transcript-test.pid")
	require.NoError(t, err)
	os.Remove("/tmp/transcript-test.pid")
	lines := strings.Split(got[1].Text, "\n")
	assert.Equal(t, "$ env PS1='in> ' busybox sh", lines[0])
	assert.Contains(t, got[1].Text, "\nin> echo inside; echo $$ > /tmp/transcript-test.pid\ninside\nin> exit 3\n$ echo status $?\nstatus 3",
		"pid %s", pid)
	assert.Equal(t, "$ sh -c 'echo started; exec sleep 1013'\nstarted", got[2].Text)
	assert.Regexp(t, `^\$ P=[0-9]+\n\$ grep -c sleep /proc/\$P/comm\n1\n\$ kill -TERM \$P$`, got[3].Text)
	assert.Equal(t, "Terminated", got[4].Text)
	out, _ := exec.Command("pgrep", "-f", "sleep 1013").Output()
	assert.Empty(t, string(out), "a process the chapter started is left")
}

// TestCleanRedraws: lines a program went back over (cursor up, erase to
// the end) are shown once, as they ended; other escapes are dropped.
func TestCleanRedraws(t *testing.T) {
	raw := "pulling x\r\nlayer a [=>   ] 1 / 4\r\n\x1b[1A\x1b[Jlayer a [==> ] 2 / 4\r\n" +
		"\x1b[1A\x1b[Jlayer a 4 done\r\n\x1b[32mok\x1b[0m\r\n"
	want := "pulling x\nlayer a 4 done\nok\n"
	if got := clean([]byte(raw)); got != want {
		t.Errorf("clean:\n%q\nwant\n%q", got, want)
	}
	two := "a\nb1\nc1\n\x1b[2A\x1b[Jb2\nc2\n"
	if got := clean([]byte(two)); got != "a\nb2\nc2\n" {
		t.Errorf("clean, two lines up: %q", got)
	}
}

package main

import (
	"bytes"
	"encoding/json"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestParseFormat needs no root: templates, tables and their headers,
// json, and a bad template refused before anything is written.
func TestParseFormat(t *testing.T) {
	rows := []any{psRow{ID: "abc", Names: "web", Status: "Up 1 second"}, psRow{ID: "def", Names: "db"}}
	render := func(text string) (string, error) {
		f, err := parseFormat(text, psHeaders)
		if err != nil {
			return "", err
		}
		var out bytes.Buffer
		err = f.render(&out, rows)
		return out.String(), err
	}
	out, err := render("{{.Names}}")
	require.NoError(t, err)
	assert.Equal(t, "web\ndb\n", out)
	out, err = render(`table {{.ID}}\t{{.Names}}`)
	require.NoError(t, err)
	assert.Equal(t, "CONTAINER ID   NAMES\nabc            web\ndef            db\n", out)
	out, err = render("{{json .Names}} {{upper .Names}} {{join (split .Status \" \") \"+\"}}")
	require.NoError(t, err)
	assert.Equal(t, "\"web\" WEB Up+1+second\n\"db\" DB \n", out)
	out, err = render("json")
	require.NoError(t, err)
	var row map[string]any
	require.NoError(t, json.Unmarshal([]byte(strings.Split(out, "\n")[0]), &row))
	assert.Equal(t, "web", row["Names"])
	for _, bad := range []string{"{{.Names", "{{.NoSuchField}}", "{{nosuchfunc .}}"} {
		_, err := render(bad)
		assert.ErrorContains(t, err, "--format", bad)
	}
}

// TestFormatFlags: --format and --no-trunc on ps, images, volume ls and
// network ls, and inspect of each kind of object, checked against what
// the stores hold; a bad template is one line, exit 2.
func TestFormatFlags(t *testing.T) {
	e := setup(t)
	res := gocell(t, "run", "-d", "--name", "fmt", "--network", "none", "-v", "fmtvol:/data", e.image, "sleep", "1000")
	require.Equal(t, 0, res.Code, res.Stderr)
	id := strings.TrimSpace(res.Stdout)
	pid := pidOf(t, "fmt")
	res = gocell(t, "ps", "--format", "{{.Names}} {{.ID}} {{.Pid}} {{.State}}")
	require.Equal(t, 0, res.Code, res.Stderr)
	assert.Equal(t, "fmt "+id[:12]+" "+strconv.Itoa(pid)+" running\n", res.Stdout)
	assert.Equal(t, id+"\n", gocell(t, "ps", "--no-trunc", "-q").Stdout)
	res = gocell(t, "ps", "--format", `table {{.Names}}\t{{.Status}}`)
	assert.Regexp(t, `^NAMES\s+STATUS\nfmt\s+Up `, res.Stdout)
	res = gocell(t, "ps", "--format", "{{json .}}")
	var row map[string]any
	require.NoError(t, json.Unmarshal([]byte(res.Stdout), &row), res.Stdout)
	assert.Equal(t, "fmt", row["Names"])

	imgID := strings.TrimSpace(gocell(t, "images", "--no-trunc", "-q").Stdout)
	assert.Regexp(t, `^sha256:[0-9a-f]{64}$`, imgID)
	res = gocell(t, "images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}")
	assert.Equal(t, e.image+" "+imgID[7:19]+"\n", res.Stdout)
	assert.Equal(t, "fmtvol local\n", gocell(t, "volume", "ls", "--format", "{{.Name}} {{.Driver}}").Stdout)
	assert.Contains(t, gocell(t, "network", "ls", "--format", "{{.Name}}={{.Subnet}}").Stdout, "bridge=10.77.0.0/24")

	// inspect: a container, an image, a volume, a network.
	assert.Equal(t, strconv.Itoa(pid)+"\n", gocell(t, "inspect", "-f", "{{.Pid}}", "fmt").Stdout)
	assert.Equal(t, imgID+"\n", gocell(t, "inspect", "--format", "{{.ID}}", e.image).Stdout)
	res = gocell(t, "inspect", "--type", "volume", "fmtvol")
	require.Equal(t, 0, res.Code, res.Stderr)
	assert.Contains(t, res.Stdout, "fmtvol")
	res = gocell(t, "inspect", "-f", "{{.Name}} {{.Bridge}}", "bridge")
	assert.Equal(t, "bridge gocell0\n", res.Stdout)
	for _, tc := range []struct {
		code int
		want string
		args []string
	}{
		{2, "--format: template", []string{"ps", "--format", "{{.Names"}},
		{2, "--format: template", []string{"inspect", "-f", "{{.NoSuchField}}", "fmt"}},
		{125, "no such object: nothing-here", []string{"inspect", "nothing-here"}},
		{125, "no such container: fmtvol", []string{"inspect", "--type", "container", "fmtvol"}},
		{2, "--type \"pod\"", []string{"inspect", "--type", "pod", "fmt"}},
	} {
		res := gocell(t, tc.args...)
		assert.Equal(t, tc.code, res.Code, "%v: %s", tc.args, res.Stderr)
		assert.Contains(t, res.Stderr, tc.want, tc.args)
		assert.Equal(t, "", res.Stdout, "nothing written: %v", tc.args)
	}
}

// TestComplete needs no root: the candidates gocell gives the shells
// for commands, flags and subcommands (TestBashCompletion in
// internal/completion types them into bash; names come from a store).
func TestComplete(t *testing.T) {
	complete := func(args ...string) []string {
		t.Helper()
		res := gocell(t, append([]string{completeArg}, args...)...)
		require.Equal(t, 0, res.Code, res.Stderr)
		return strings.Fields(res.Stdout)
	}
	assert.Equal(t, []string{"registry", "rename", "restart", "rm", "rmi", "run"}, complete("r"))
	assert.Equal(t, []string{"--memory", "--memory-reservation", "--memory-swap"}, complete("run", "--mem"))
	assert.Equal(t, []string{"inspect"}, complete("network", "ins"))
	assert.Equal(t, []string{"serve"}, complete("registry", ""))
	assert.NotContains(t, complete(""), "__monitor", "internal commands are not offered")
	bare := t.TempDir()
	assert.Empty(t, complete("--root", bare, "start", ""), "no store there: no names")
	assert.Empty(t, complete("--root", bare, "run", ""))
	entries, err := os.ReadDir(bare)
	require.NoError(t, err)
	assert.Empty(t, entries, "and nothing made")
	res := gocell(t, "completion", "bash")
	assert.Contains(t, res.Stdout, "complete -o default -F _gocell gocell")
	assert.Contains(t, gocell(t, "completion", "zsh").Stdout, "compdef _gocell gocell")
	assert.Equal(t, 2, gocell(t, "completion", "fish").Code)
}

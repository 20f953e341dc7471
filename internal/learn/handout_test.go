package learn

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// kitRoot is the repository these tests run in.
func kitRoot(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	require.NoError(t, err)
	k, err := FindKit(wd)
	require.NoError(t, err)
	return k.Root
}

// TestHandoutIsTheStepLessItsPrimitive: every step's hand-out, with what
// was taken out put back, is the step again, byte for byte; each stub is
// a todo call that names its step and chapter; and nothing else changed.
func TestHandoutIsTheStepLessItsPrimitive(t *testing.T) {
	root := kitRoot(t)
	for _, nn := range Steps() {
		src, err := os.ReadFile(filepath.Join(root, StepDir(nn), "main.go"))
		require.NoError(t, err)
		out, err := MakeHandout(nn, src)
		require.NoError(t, err, nn)
		back, err := Restore(nn, out, src)
		require.NoError(t, err, nn)
		assert.Equal(t, string(src), string(back), "step %s: the hand-out plus what it lacks is the step", nn)
		h := handouts[nn]
		want := len(h.Stubs)
		if h.Flag != "" {
			want++
		}
		assert.Equal(t, want, strings.Count(string(out), `TODO("`)+strings.Count(string(out), `TODOFlag(`)+
			strings.Count(string(out), `TODOError(`), nn)
		assert.Equal(t, want, strings.Count(string(out), `("`+nn+`", `), "step %s: one stub for each part", nn)
		assert.Contains(t, string(out), "lessons/"+StepDir(nn)+`.md, \"The kernel interface\"`, nn)
		assert.NotContains(t, string(out), "TODO("+nn+")", "the text comes from todo, at run time")
	}
}

// TestHandoutsCompile builds every hand-out, in a workspace module as
// make start-NN makes it: it must compile and vet clean, so that the
// learner's first run prints a TODO line, not a compiler error.
func TestHandoutsCompile(t *testing.T) {
	root := kitRoot(t)
	if _, err := exec.LookPath("go"); err != nil {
		t.Fatal("the go command is needed: make start-NN builds with it")
	}
	k := &Kit{Root: root, Work: filepath.Join(t.TempDir(), "work")}
	for _, nn := range Steps() {
		if _, err := k.Start(nn, false); err != nil {
			t.Fatal(err)
		}
	}
	_, err := k.Start("01", false)
	assert.ErrorIs(t, err, os.ErrExist, "an existing workspace is kept")
	assert.ErrorContains(t, err, "make start-01 FORCE=1")
	_, err = k.Start("01", true)
	assert.NoError(t, err, "FORCE=1")
	_, err = k.Start("42", false)
	assert.ErrorContains(t, err, "there is no step 42")

	cmd := exec.Command("go", "vet", "./...")
	cmd.Dir = k.Work
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod")
	out, err := cmd.CombinedOutput()
	assert.NoError(t, err, "%s", out)
	// And the kit's own module does not see them.
	cmd = exec.Command("go", "list", "./...")
	cmd.Dir = root
	out, err = cmd.Output()
	require.NoError(t, err)
	assert.False(t, bytes.Contains(out, []byte("/work/")), "go list ./... of the kit lists a workspace")
}

package learn

import (
	"bytes"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"testing"

	"github.com/gocell/gocell/internal/celltest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The learner's loop, tried as a learner would, on a kit of the test's
// own (its work/ in a temporary directory): a fresh hand-out fails its
// checks and says where it stopped; the step's own code passes them; the
// step with one primitive broken fails the check of that primitive, by
// name; each exercise's answer passes its check, and the step without it
// fails it. These run the steps' kernel-level tests, so they need root,
// and the go command, as make check-NN does.

// testKit is a Kit whose workspaces are in a temporary directory.
func testKit(t *testing.T) *Kit {
	t.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		t.Fatal("the go command is needed: make check-NN runs go test")
	}
	return &Kit{Root: kitRoot(t), Work: filepath.Join(t.TempDir(), "work")}
}

// breaks are, for each step, a change to its code that breaks its new
// primitive, and the check that must then fail. None touches the host:
// each keeps the namespaces that stand between the broken code and it.
var breaks = map[string]struct{ old, new, test string }{
	"01": {"\tsetHostname()\n\texecCommand(args)", "\texecCommand(args)", "TestUTS"},
	"02": {"\t{\"pid\", unix.CLONE_NEWPID},\n", "", "TestPID1"},
	"03": {"\tpivotRoot()\n", "", "TestMountIsolation"},
	"04": {"\t{\"ipc\", unix.CLONE_NEWIPC},\n", "", "TestIPCIsolation"},
	"05": {"\treturn configureInside(pid, peer)\n", "\treturn nil\n", "TestNetwork"},
	"06": {"HostID: n[1], Size", "HostID: n[1] + 1, Size", "TestUserNamespace"},
	"07": {"\t\tmemoryBytes = n\n", "\t\t_ = n\n", "TestMemoryLimit"},
	"08": {"\twork := filepath.Join(runDir, \"work\")\n", "\twork := upper\n", "TestOverlay"},
}

// runCheck runs make check-NN's Check and returns its verdict.
func runCheck(t *testing.T, k *Kit, nn string) (bool, string) {
	t.Helper()
	var out bytes.Buffer
	ok, err := k.Check(nn, &out)
	require.NoError(t, err, "%s", out.String())
	return ok, out.String()
}

// writeMain puts src in the workspace of step nn, as the learner's code.
func writeMain(t *testing.T, k *Kit, nn, src string) {
	t.Helper()
	require.NoError(t, os.WriteFile(filepath.Join(k.Workspace(nn), "main.go"), []byte(src), 0o644))
}

func TestLoop(t *testing.T) {
	celltest.RequirePriv(t)
	k := testKit(t)
	count := regexp.MustCompile(`^check-(\d\d): (\d+) of (\d+) checks pass\n`)
	for _, nn := range Steps() {
		t.Run(nn, func(t *testing.T) {
			_, err := k.Start(nn, false)
			require.NoError(t, err)
			ok, out := runCheck(t, k, nn)
			assert.False(t, ok, "a fresh hand-out passes:\n%s", out)
			m := count.FindStringSubmatch(out)
			require.NotNil(t, m, "the verdict starts with the count:\n%s", out)
			assert.NotEqual(t, m[2], m[3])
			assert.Contains(t, out, "Your program stops at TODO("+nn+"): ")

			step, err := os.ReadFile(filepath.Join(k.Root, StepDir(nn), "main.go"))
			require.NoError(t, err)
			writeMain(t, k, nn, string(step))
			ok, out = runCheck(t, k, nn)
			assert.True(t, ok, "the step's own code fails:\n%s", out)
			assert.NotContains(t, out, "FAIL")

			b := breaks[nn]
			require.Equal(t, 1, strings.Count(string(step), b.old), "step %s: the break's code", nn)
			writeMain(t, k, nn, strings.Replace(string(step), b.old, b.new, 1))
			ok, out = runCheck(t, k, nn)
			assert.False(t, ok, "step %s with its primitive broken passes:\n%s", nn, out)
			assert.Contains(t, out, "  FAIL  "+checks[b.test].says+"\n", "the check of the broken primitive fails, by name")
			assert.Contains(t, out, "read: lessons/"+StepDir(checks[b.test].chapter)+".md")
		})
	}
}

// TestExercises: each answer of lessons/answers.md passes its exercise's
// check, and the step without it fails.
func TestExercises(t *testing.T) {
	celltest.RequirePriv(t)
	k := testKit(t)
	md, err := os.ReadFile(filepath.Join(k.Root, "lessons", "answers.md"))
	require.NoError(t, err)
	answers := Answers(string(md))
	for _, id := range ExerciseList() {
		nn, ex, _ := strings.Cut(id, "-")
		if exercises[nn][ex].system != nil {
			continue // TestExercises09, TestExercises10
		}
		t.Run(id, func(t *testing.T) {
			if _, err := os.Stat(k.Workspace(nn)); err != nil {
				_, err := k.Start(nn, false)
				require.NoError(t, err)
			}
			step, err := os.ReadFile(filepath.Join(k.Root, StepDir(nn), "main.go"))
			require.NoError(t, err)
			writeMain(t, k, nn, string(step))
			var out bytes.Buffer
			ok, err := k.CheckExercise(nn, ex, &out)
			require.NoError(t, err, "%s", out.String())
			assert.False(t, ok, "the step without the exercise passes it:\n%s", out.String())
			assert.Regexp(t, `^check-`+id+`: \d+ of \d+ checks pass`, out.String())

			diff, ok := answers[id]
			require.True(t, ok, "lessons/answers.md has no answer %s", id)
			solved, err := Apply(string(step), diff)
			require.NoError(t, err, "answer %s does not apply to %s", id, StepDir(nn))
			writeMain(t, k, nn, solved)
			out.Reset()
			ok, err = k.CheckExercise(nn, ex, &out)
			require.NoError(t, err, "%s", out.String())
			assert.True(t, ok, "the answer fails its check:\n%s", out.String())
		})
	}
}

// TestExercises09: chapter 09's checks look at gocell's store: after the
// chapter's commands (import, run, commit, import again) they pass, and
// on an empty store they fail. gocell is built from final/ for it.
func TestExercises09(t *testing.T) {
	celltest.RequirePriv(t)
	k := testKit(t)
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "gocell")
	build := exec.Command("go", "build", "-o", bin, "./final")
	build.Dir = k.Root
	out, err := build.CombinedOutput()
	require.NoError(t, err, "%s", out)
	root := filepath.Join(tmp, "root")
	t.Setenv("GOCELL_ROOT", root)
	t.Setenv("GOCELL_CONFIG", filepath.Join(tmp, "none.json"))
	gocell := func(args ...string) {
		t.Helper()
		out, err := exec.Command(bin, args...).CombinedOutput()
		require.NoError(t, err, "gocell %v: %s", args, out)
	}
	defer exec.Command(bin, "system", "reset", "--force").Run()

	var buf bytes.Buffer
	ok, err := k.CheckExercise("09", "1", &buf)
	require.NoError(t, err)
	assert.False(t, ok, "an empty store passes:\n%s", buf.String())
	assert.Contains(t, buf.String(), "no image store at "+root)

	layout := filepath.Join(tmp, "layout")
	for _, script := range [][]string{
		{"scripts/mkrootfs.sh", filepath.Join(tmp, "rootfs")},
		{"scripts/mkimage.sh", filepath.Join(tmp, "rootfs"), layout},
	} {
		cmd := exec.Command("sh", script...)
		cmd.Dir, cmd.Env = k.Root, append(os.Environ(), "OWNER=0:0")
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%v: %s", script, out)
	}
	gocell("import", layout, "demo:latest")
	gocell("run", "--name", "c", "--network", "none", "demo", "sh", "-c", "echo hi > /greeting; rm /etc/os-release")
	gocell("commit", "c", "demo:v2")
	gocell("import", layout, "demo2:latest")
	for _, ex := range []string{"1", "2"} {
		buf.Reset()
		ok, err := k.CheckExercise("09", ex, &buf)
		require.NoError(t, err)
		assert.True(t, ok, "09-%s after the chapter's commands:\n%s", ex, buf.String())
	}
}

// TestCheckErrors: what a learner gets wrong before any check can run
// gets one clear line: no workspace, not root, code that does not
// compile (with the compiler's message and the file to open), a step or
// an exercise that does not exist.
func TestCheckErrors(t *testing.T) {
	celltest.RequirePriv(t)
	k := testKit(t)
	var out bytes.Buffer
	_, err := k.Check("03", &out)
	assert.ErrorContains(t, err, "check-03: there is no workspace ")
	assert.ErrorContains(t, err, "work/03-mount yet; make one with: make start-03")
	_, err = k.Check("42", &out)
	assert.ErrorContains(t, err, "there is no step 42")
	_, err = k.CheckExercise("03", "9", &out)
	assert.ErrorContains(t, err, "check-03-9: exercise 9 of chapter 03 has no check; the kit checks these: check-03-1, check-03-2")

	_, err = k.Start("03", false)
	require.NoError(t, err)
	writeMain(t, k, "03", "package main\n\nfunc main() { undefinedThing() }\n")
	ok, err := k.Check("03", &out)
	require.NoError(t, err)
	assert.False(t, ok)
	assert.Contains(t, out.String(), "check-03: your code in ")
	assert.Contains(t, out.String(), "does not compile yet")
	assert.Contains(t, out.String(), "undefined: undefinedThing")
	assert.Contains(t, out.String(), "main.go at the line the compiler names")

	// Not root: the learn command itself, as uid 65534.
	dir, err := os.MkdirTemp("", "gocell-learn-")
	require.NoError(t, err)
	defer os.RemoveAll(dir)
	require.NoError(t, os.Chmod(dir, 0o755))
	bin := filepath.Join(dir, "learn")
	build := exec.Command("go", "build", "-o", bin, "./internal/learn/cmd/learn")
	build.Dir = k.Root
	b, err := build.CombinedOutput()
	require.NoError(t, err, "%s", b)
	cmd := exec.Command(bin, "check", "01")
	cmd.Dir = k.Root
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	b, err = cmd.CombinedOutput()
	assert.Error(t, err)
	assert.Contains(t, string(b), "run: sudo make check-01", "%s", b)
}

// TestChecksCoverTheTests: every test function of every step has its
// words in checks, every exercise its checker file and its answer, and
// every checker's tests their words, so no verdict line is a bare name.
func TestChecksCoverTheTests(t *testing.T) {
	root := kitRoot(t)
	for _, nn := range Steps() {
		for _, name := range testFuncs(t, filepath.Join(root, StepDir(nn), "main_test.go")) {
			_, ok := checks[name]
			assert.True(t, ok, "%s/main_test.go: %s has no words in checks (check.go)", StepDir(nn), name)
		}
	}
	md, err := os.ReadFile(filepath.Join(root, "lessons", "answers.md"))
	require.NoError(t, err)
	answers := Answers(string(md))
	var ids []string
	for _, id := range ExerciseList() {
		ids = append(ids, id)
		nn, ex, _ := strings.Cut(id, "-")
		if exercises[nn][ex].system != nil {
			continue
		}
		file := filepath.Join(root, "internal", "learn", "exercises", fmt.Sprintf("ex_%s_%s_test.go", nn, ex))
		names := testFuncs(t, file)
		assert.NotEmpty(t, names, file)
		for _, name := range names {
			_, ok := exercises[nn][ex].Checks[name]
			assert.True(t, ok, "%s: %s has no words in exercises.go", file, name)
		}
		_, ok := answers[id]
		assert.True(t, ok, "lessons/answers.md has no answer %s", id)
	}
	var marked []string
	for id := range answers {
		marked = append(marked, id)
	}
	sort.Strings(marked)
	var want []string
	for _, id := range ids {
		nn, ex, _ := strings.Cut(id, "-")
		if exercises[nn][ex].system == nil {
			want = append(want, id)
		}
	}
	assert.Equal(t, want, marked, "the answers of answers.md are the exercises the kit checks")
	// Every chapter 01-10 has at least two checkable exercises, and says
	// which they are.
	for _, nn := range append(Steps(), "09", "10") {
		n := 0
		for _, id := range ids {
			if strings.HasPrefix(id, nn+"-") {
				n++
			}
		}
		assert.GreaterOrEqual(t, n, 2, "chapter %s", nn)
		text, err := os.ReadFile(filepath.Join(root, "lessons", chapterFile(nn)+".md"))
		require.NoError(t, err)
		words := strings.Join(strings.Fields(string(text)), " ")
		for k := 1; k <= n; k++ {
			assert.True(t, strings.Contains(words, fmt.Sprintf("make check-%s-%d", nn, k)),
				"chapter %s does not say make check-%s-%d", nn, nn, k)
		}
	}
}

// testFuncs lists the Test functions of a Go file, but TestMain.
func testFuncs(t *testing.T, file string) []string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), file, nil, 0)
	require.NoError(t, err)
	var out []string
	for _, d := range f.Decls {
		if fn, ok := d.(*ast.FuncDecl); ok && strings.HasPrefix(fn.Name.Name, "Test") && fn.Name.Name != "TestMain" {
			out = append(out, fn.Name.Name)
		}
	}
	return out
}

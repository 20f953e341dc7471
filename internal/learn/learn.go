// Package learn is the learner's loop of the kit: a workspace per step
// with the step's new primitive taken out (make start-NN), a verdict on
// the learner's code from the step's own kernel-level tests (make
// check-NN), checks of the chapters' exercises (make check-NN-K), and
// the difference with the step (make solution-NN). The command is
// internal/learn/cmd/learn, which the Makefile runs.
//
// The workspaces live in work/ at the top of the repository, which is a
// Go module of its own (work/go.mod, made here): `go test ./...`, `go
// vet ./...` and the kit's other checks never see the learner's code, so
// a workspace in progress cannot turn the kit red. work/ is git-ignored.
package learn

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// steps are the numbered steps, by number.
var steps = map[string]string{
	"01": "01-uts", "02": "02-pid", "03": "03-mount", "04": "04-ipc",
	"05": "05-net", "06": "06-user", "07": "07-cgroups", "08": "08-overlay",
}

// Steps lists the step numbers in order.
func Steps() []string {
	var out []string
	for nn := range steps {
		out = append(out, nn)
	}
	sort.Strings(out)
	return out
}

// StepDir is the directory of step nn ("03" → "03-mount"); "" if none.
func StepDir(nn string) string { return steps[nn] }

// Kit is a checkout of the kit, and where its workspaces are.
type Kit struct {
	// Root is the repository's top directory.
	Root string
	// Work is the directory of the workspaces (Root/work by default).
	Work string
}

// FindKit finds the repository that dir is in.
func FindKit(dir string) (*Kit, error) {
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "01-uts", "main.go")); err == nil {
			return &Kit{Root: d, Work: filepath.Join(d, "work")}, nil
		}
		if d == filepath.Dir(d) {
			return nil, fmt.Errorf("%s is not inside the gocell kit (no 01-uts/main.go above it)", dir)
		}
	}
}

// Workspace is the directory of step nn's workspace.
func (k *Kit) Workspace(nn string) string { return filepath.Join(k.Work, StepDir(nn)) }

// Start makes the workspace of step nn: the hand-out's main.go and
// todo.go. An existing workspace is kept, unless force. It returns the
// workspace's directory.
func (k *Kit) Start(nn string, force bool) (string, error) {
	if StepDir(nn) == "" {
		return "", fmt.Errorf("start-%s: %s", nn, NoStep(nn))
	}
	dir := k.Workspace(nn)
	if _, err := os.Stat(dir); err == nil && !force {
		return dir, keptError(fmt.Sprintf("start-%s: %s is there already, with your work, "+
			"and stays as it is; to start again from the hand-out, and lose it: "+
			"make start-%s FORCE=1", nn, k.rel(dir), nn))
	}
	src, err := os.ReadFile(filepath.Join(k.Root, StepDir(nn), "main.go"))
	if err != nil {
		return "", err
	}
	out, err := MakeHandout(nn, src)
	if err != nil {
		return "", err
	}
	if err := k.module(); err != nil {
		return "", err
	}
	if err := os.RemoveAll(dir); err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	for name, data := range map[string][]byte{"main.go": out, "todo.go": []byte(TodoGo)} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			return "", err
		}
	}
	for _, p := range []string{k.Work, filepath.Join(k.Work, "go.mod"), filepath.Join(k.Work, "go.sum"),
		dir, filepath.Join(dir, "main.go"), filepath.Join(dir, "todo.go")} {
		chownToCaller(p)
	}
	return dir, nil
}

// chownToCaller gives path to the user who ran sudo, when we run under
// sudo: the workspace is theirs to edit, whoever made it.
func chownToCaller(path string) {
	uid, err1 := strconv.Atoi(os.Getenv("SUDO_UID"))
	gid, err2 := strconv.Atoi(os.Getenv("SUDO_GID"))
	if err1 == nil && err2 == nil && os.Geteuid() == 0 {
		os.Lchown(path, uid, gid)
	}
}

// module writes work/go.mod and work/go.sum: the kit's own, for a module
// named github.com/gocell/gocell/work that finds the kit (its
// internal/celltest, for the checks) at "..".
func (k *Kit) module() error {
	if err := os.MkdirAll(k.Work, 0o755); err != nil {
		return err
	}
	mod, err := os.ReadFile(filepath.Join(k.Root, "go.mod"))
	if err != nil {
		return err
	}
	sum, err := os.ReadFile(filepath.Join(k.Root, "go.sum"))
	if err != nil {
		return err
	}
	rel, err := filepath.Rel(k.Work, k.Root)
	if err != nil {
		return err
	}
	text := strings.Replace(string(mod), "module github.com/gocell/gocell\n",
		"// The learner's workspaces: a module of their own (see internal/learn).\n"+
			"module github.com/gocell/gocell/work\n", 1)
	text += "\nrequire github.com/gocell/gocell v0.0.0-00010101000000-000000000000\n\n" +
		"replace github.com/gocell/gocell => " + rel + "\n"
	if err := os.WriteFile(filepath.Join(k.Work, "go.mod"), []byte(text), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(k.Work, "go.sum"), sum, 0o644)
}

// rel is path as the learner types it, from the kit's top.
func (k *Kit) rel(path string) string {
	if r, err := filepath.Rel(k.Root, path); err == nil {
		return r
	}
	return path
}

// keptError is a workspace that Start kept: errors.Is(err, os.ErrExist).
type keptError string

func (e keptError) Error() string        { return string(e) }
func (e keptError) Is(target error) bool { return target == os.ErrExist }

package learn

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// Exercise is one exercise of a chapter that the kit can check.
type Exercise struct {
	Title string
	// Checks say, in the learner's words, what each test of the
	// exercise's checker means. For chapters 01 to 08 the checker is
	// internal/learn/exercises/ex_NN_K_test.go, run in the workspace;
	// for chapters 09 and 10, system.
	Checks map[string]string
	// system checks the exercise of a chapter without a workspace: it
	// looks at what root holds (gocell's store for 09, gocell-runtime's
	// state for 10) and at the kernel, and names its checks itself.
	system func(root string) []result
}

// systemRoots are, for the chapters whose exercises system checks, the
// root they look at, and whose it is, for the message without sudo.
var systemRoots = map[string]struct {
	root  func() string
	whose string
}{
	"09": {GocellRoot, "gocell's store is root's"},
	"10": {RuntimeRoot, "gocell-runtime's state and its containers' /proc are root's"},
}

// exercises are the checkable exercises, by chapter and number. The
// chapters say which they are ("make check-NN-K"), and
// lessons/answers.md has the answers.
var exercises = map[string]map[string]Exercise{
	"01": {
		"1": {Title: "Domain name", Checks: map[string]string{
			"TestDomainname":   "--domainname sets the container's NIS domain name, and not the host's",
			"TestNoDomainname": "without --domainname, the container has none"}},
		"2": {Title: "An environment variable", Checks: map[string]string{
			"TestEnv":    "each --env KEY=VALUE is in the command's environment (/proc/PID/environ)",
			"TestBadEnv": "--env without '=' is refused with exit 2"}},
	},
	"02": {
		"1": {Title: "Three pids", Checks: map[string]string{
			"TestNested": "with --nested, the command has three pids: host, container, and 1 in its own namespace"}},
		"2": {Title: "A real init", Checks: map[string]string{
			"TestInit":       "with --init, pid 1 is your program, the command is its child, and orphans are reaped",
			"TestInitStatus": "with --init, the command's exit status is still the program's"}},
	},
	"03": {
		"1": {Title: "A volume", Checks: map[string]string{
			"TestVolume":    "--volume HOST:/mnt/vol is a mount point inside, showing the host's directory",
			"TestBadVolume": "a --volume that is not HOST:CONTAINER is refused with exit 2"}},
		"2": {Title: "Read-only root", Checks: map[string]string{
			"TestReadOnlyRoot": "with --read-only, / is a read-only mount, and writes there fail"}},
	},
	"04": {
		"1": {Title: "The host's IPC", Checks: map[string]string{
			"TestIPCHost":     "with --ipc-host, the container shares the host's IPC namespace, and no other",
			"TestIPCStillNew": "without it, the IPC namespace is still a new one"}},
		"2": {Title: "Limits are per namespace", Checks: map[string]string{
			"TestShmmni": "--shmmni sets kernel.shmmni in the container's IPC namespace, not the host's"}},
	},
	"05": {
		"1": {Title: "Loopback only", Checks: map[string]string{
			"TestNoNetwork": "with --no-network, the container's network namespace has lo alone, up, and no veth"}},
		"2": {Title: "MTU", Checks: map[string]string{
			"TestMTU": "--mtu sets the MTU of both ends of the veth pair"}},
	},
	"06": {
		"1": {Title: "Not root inside", Checks: map[string]string{
			"TestUser": "with --user 1000, the command is uid and gid 1000 inside, 101000 on the host"}},
		"2": {Title: "Drop a capability", Checks: map[string]string{
			"TestCapDrop": "--cap-drop CAP_NET_RAW takes it out of the command's bounding and effective sets"}},
	},
	"07": {
		"1": {Title: "CPU weight", Checks: map[string]string{
			"TestCPUWeight":    "--cpu-weight is in the cgroup: cpu.weight (v2) or cpu.shares (v1)",
			"TestBadCPUWeight": "a weight out of 1 to 10000 is refused with exit 125"}},
		"2": {Title: "A soft memory limit", Checks: map[string]string{
			"TestMemoryHigh": "--memory-high is in the cgroup: memory.high (v2) or memory.soft_limit_in_bytes (v1)"}},
	},
	"08": {
		"1": {Title: "A volatile overlay", Checks: map[string]string{
			"TestVolatile": "with --volatile, the overlay's super block options include volatile"}},
		"2": {Title: "No access times", Checks: map[string]string{
			"TestNoatime": "with --noatime, the root mount's options include noatime"}},
	},
	"09": {
		"1": {Title: "Commit", system: checkCommit},
		"2": {Title: "Layers are shared", system: checkShared},
	},
	"10": {
		"1": {Title: "A user namespace", system: checkUserNS},
		"2": {Title: "A hook", system: checkPoststart},
		"3": {Title: "Refused by name", system: checkCPUs},
	},
}

// ExerciseList lists "NN-K" for every checkable exercise, in order.
func ExerciseList() []string {
	var out []string
	for _, nn := range append(Steps(), "09", "10") {
		for k := 1; ; k++ {
			if _, ok := exercises[nn][fmt.Sprint(k)]; !ok {
				break
			}
			out = append(out, fmt.Sprintf("%s-%d", nn, k))
		}
	}
	return out
}

// CheckExercise checks exercise k of chapter nn, writes the verdict to w,
// and returns whether every check passed.
func (k *Kit) CheckExercise(nn, ex string, w io.Writer) (bool, error) {
	what := fmt.Sprintf("check-%s-%s", nn, ex)
	e, ok := exercises[nn][ex]
	if !ok {
		var have []string
		for _, id := range ExerciseList() {
			if strings.HasPrefix(id, nn+"-") {
				have = append(have, "check-"+id)
			}
		}
		if len(have) == 0 {
			return false, fmt.Errorf("%s: chapter %s has no exercise the kit can check", what, nn)
		}
		return false, fmt.Errorf("%s: exercise %s of chapter %s has no check; the kit checks these: %s",
			what, ex, nn, strings.Join(have, ", "))
	}
	read := fmt.Sprintf("lessons/%s.md, \"Exercises\", %s. %s", chapterFile(nn), ex, e.Title)
	var results []result
	if e.system != nil {
		sys := systemRoots[nn]
		if os.Geteuid() != 0 {
			return false, fmt.Errorf("%s: %s; run: sudo make %s", what, sys.whose, what)
		}
		results = e.system(sys.root())
	} else {
		src, err := os.ReadFile(filepath.Join(k.Root, "internal", "learn", "exercises",
			fmt.Sprintf("ex_%s_%s_test.go", nn, ex)))
		if err != nil {
			return false, err
		}
		if results, err = k.runTests(what, nn, src, []string{"-tags", "learnercheck"}, w); err != nil || results == nil {
			return false, err
		}
	}
	return report(w, what, results, func(r result) (string, string) {
		if says, ok := e.Checks[r.name]; ok {
			return says, read
		}
		return r.name, read
	}), nil
}

// chapterFile is the chapter of nn, for 01 to 10.
func chapterFile(nn string) string {
	switch nn {
	case "09":
		return "09-final"
	case "10":
		return "10-oci"
	}
	return StepDir(nn)
}

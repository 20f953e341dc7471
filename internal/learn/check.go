package learn

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/gocell/gocell/internal/learn/cleanup"
	"golang.org/x/sys/unix"
)

// A check is one test function of a step's tests, in the learner's words.
type check struct {
	says    string // what passing means
	chapter string // the step whose chapter explains it
	section string // the section of that chapter
}

// checks are every test function of the steps (TestChecksCoverTheTests
// keeps this list whole).
var checks = map[string]check{
	"TestUTS":                 {"your container has a UTS namespace of its own, with the hostname you gave", "01", "The kernel interface"},
	"TestCommandSeesHostname": {"the command sees that hostname and the standard PATH", "01", "Try it"},
	"TestExitStatus":          {"the command's exit status becomes the program's (128+N after signal N)", "01", "Try it"},
	"TestBadInput":            {"bad input gets one clear line, the right exit code, and leaves nothing behind", "01", "Try it"},
	"TestUsage":               {"--help, and a clear line for a command line it does not understand", "01", "Try it"},
	"TestPID1":                {"the command is process 1 of a new PID namespace", "02", "The kernel interface"},
	"TestMountIsolation":      {"a mount namespace and a root of its own: private mounts, pivot_root, a fresh /proc, the host's root gone", "03", "The kernel interface"},
	"TestIPCIsolation":        {"an IPC namespace: the host's shared memory is invisible, and /dev/mqueue shows the container's queues", "04", "The kernel interface"},
	"TestNetwork":             {"a network namespace on the step's bridge: eth0 with its address, lo up, a default route, pings both ways", "05", "The kernel interface"},
	"TestTwoAtOnce":           {"two containers at once get two addresses, and share the bridge", "05", "Look from the host"},
	"TestKilledRunCleansUp":   {"a run killed with SIGKILL leaves no veth, lease or bridge for the next one to trip on", "05", "Pitfalls"},
	"TestUserNamespace":       {"a user namespace: root inside is uid 100000 outside, with the id maps you gave", "06", "The kernel interface"},
	"TestOtherIDMap":          {"another --uid-map and --gid-map work too", "06", "Try it"},
	"TestMemoryLimit":         {"--memory limits the container's memory: a memory hog is OOM-killed", "07", "The kernel interface"},
	"TestPidsLimit":           {"--pids limits its processes: a fork loop stops at the limit", "07", "The kernel interface"},
	"TestCPULimit":            {"--cpus limits its CPU time", "07", "The kernel interface"},
	"TestFindCgroups":         {"the cgroup trees are found as the machine has them (v1, hybrid, v2)", "07", "Pitfalls"},
	"TestCgroupFilesV2":       {"the cgroup v2 files hold the limits", "07", "The kernel interface"},
	"TestCgroupFilesV1":       {"the cgroup v1 files hold the limits", "07", "The kernel interface"},
	"TestParseSize":           {"sizes such as 64M parse", "07", "Try it"},
	"TestCPUSet":              {"--cpuset pins it to CPUs: a busy loop never runs on another", "07", "Try it"},
	"TestCPUSetFilesV1":       {"on v1 the empty cpuset cgroups are filled from their parents first", "07", "Pitfalls"},
	"TestParseCPUList":        {"CPU lists such as 0-2,4 parse", "07", "Try it"},
	"TestOverlay":             {"the root is an overlay: writes land in the run's upper directory, the rootfs never changes", "08", "The kernel interface"},
	"TestKeep":                {"--keep keeps the upper directory", "08", "Try it"},
	"TestLayers":              {"--lower stacks more read-only layers, in order", "08", "The kernel interface"},
}

// event is one line of `go test -json`.
type event struct {
	Action string
	Test   string
	Output string
}

// result is how one check went.
type result struct {
	name   string
	pass   bool
	output []string
}

// kitTestFile is the name under which the kit's tests are copied into a
// workspace, for one check at a time.
const kitTestFile = "kit_test.go"

// Check runs step nn's own tests on the learner's workspace and writes
// the verdict to w: a count, a line per check, and for each failure what
// the kernel showed and which section to read. It returns whether every
// check passed. An error means no verdict could be given.
func (k *Kit) Check(nn string, w io.Writer) (bool, error) {
	if err := k.ready(nn, "check-"+nn); err != nil {
		return false, err
	}
	src, err := os.ReadFile(filepath.Join(k.Root, StepDir(nn), "main_test.go"))
	if err != nil {
		return false, err
	}
	results, err := k.runTests("check-"+nn, nn, src, nil, w)
	if err != nil || results == nil {
		return false, err
	}
	return report(w, "check-"+nn, results, func(r result) (string, string) {
		c, ok := checks[r.name]
		if !ok {
			return r.name, fmt.Sprintf("lessons/%s.md", StepDir(nn))
		}
		return c.says, fmt.Sprintf("lessons/%s.md, %q", StepDir(c.chapter), c.section)
	}), nil
}

// ready checks what every check needs: a workspace, and root.
func (k *Kit) ready(nn, what string) error {
	if StepDir(nn) == "" {
		return fmt.Errorf("%s: %s", what, NoStep(nn))
	}
	// Root first: the answer must not depend on what work/ holds.
	if os.Geteuid() != 0 {
		return fmt.Errorf("%s: the checks look at the kernel, as root; run: sudo make %s", what, what)
	}
	dir := k.Workspace(nn)
	if _, err := os.Stat(filepath.Join(dir, "main.go")); err != nil {
		return fmt.Errorf("%s: there is no workspace %s yet; make one with: make start-%s",
			what, k.rel(dir), nn)
	}
	return nil
}

// runTests copies the test file src into step nn's workspace and runs
// it, with extra arguments for go test; what names the make target, for
// messages. It writes the compiler's
// messages to w and returns nil results when the workspace does not
// compile.
func (k *Kit) runTests(what, nn string, src []byte, extra []string, w io.Writer) ([]result, error) {
	if err := k.ready(nn, what); err != nil {
		return nil, err
	}
	dir := k.Workspace(nn)
	header := fmt.Sprintf("// Copied here by the kit (make %s): the checks, run on your code.\n"+
		"// Do not edit it: it is written anew at every check.\n\n", what)
	if err := os.WriteFile(filepath.Join(dir, kitTestFile), append([]byte(header), src...), 0o644); err != nil {
		return nil, err
	}
	chownToCaller(filepath.Join(dir, kitTestFile))
	env := append(os.Environ(), "GOCELL_PRIV_TESTS=1", "GOFLAGS=-mod=mod", "NO_COLOR=1")
	// First compile: a compiler's message is worth more than a list of
	// failed checks. The test binary is then run through test2json, for
	// the results one by one, as go test -json would, but without
	// building it again.
	tmp, err := os.MkdirTemp("", "gocell-check-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	bin := filepath.Join(tmp, "kit.test")
	build := exec.Command("go", append([]string{"test", "-c", "-o", bin}, extra...)...)
	build.Dir, build.Env = dir, env
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(w, "%s: your code in %s does not compile yet:\n\n", what, k.rel(dir))
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if !strings.HasPrefix(line, "#") && !strings.HasPrefix(line, "FAIL") {
				fmt.Fprintf(w, "  %s\n", line)
			}
		}
		fmt.Fprintf(w, "\nOpen %s at the line the compiler names, fix it, and check again.\n",
			k.rel(filepath.Join(dir, "main.go")))
		return nil, nil
	}
	// What earlier runs left would fail checks that are not the
	// learner's fault; what this one leaves goes too.
	var dirs []string
	for _, nn := range Steps() {
		dirs = append(dirs, StepDir(nn))
	}
	cleanup.Sweep(dirs)
	defer cleanup.Sweep(dirs)
	// A program that sets the hostname without its own UTS namespace
	// renames the host: put the names back, and say so.
	defer keepNames(w)()
	run := exec.Command("go", "tool", "test2json", "-t", bin, "-test.v=test2json", "-test.count=1")
	run.Dir, run.Env = dir, env
	var stderr bytes.Buffer
	run.Stderr = &stderr
	out, err := run.Output()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		return nil, fmt.Errorf("%s: run the checks: %v", what, err)
	}
	results := parseEvents(out)
	if len(results) == 0 {
		return nil, fmt.Errorf("%s: go test ran no test: %s", what, strings.TrimSpace(stderr.String()))
	}
	return results, nil
}

// parseEvents turns `go test -json` output into one result per
// top-level test, in the order they ran.
func parseEvents(out []byte) []result {
	byName := map[string]*result{}
	var order []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 4<<20)
	for sc.Scan() {
		var e event
		if json.Unmarshal(sc.Bytes(), &e) != nil || e.Test == "" {
			continue
		}
		name, _, _ := strings.Cut(e.Test, "/")
		r, ok := byName[name]
		if !ok {
			r = &result{name: name}
			byName[name] = r
			order = append(order, name)
		}
		switch {
		case e.Action == "output":
			r.output = append(r.output, strings.TrimRight(e.Output, "\n"))
		case e.Test == name && e.Action == "pass":
			r.pass = true
		}
	}
	var results []result
	for _, name := range order {
		results = append(results, *byName[name])
	}
	return results
}

// report writes the verdict on results: "check-03: 5 of 9 checks pass",
// then the passed checks, then the failed ones with what went wrong and
// what to read. words gives a check's description and where to read.
func report(w io.Writer, what string, results []result, words func(result) (string, string)) bool {
	passed := 0
	for _, r := range results {
		if r.pass {
			passed++
		}
	}
	fmt.Fprintf(w, "%s: %d of %d checks pass\n", what, passed, len(results))
	// Where the program stopped at a TODO stub, that is the news: said
	// once, before the checks it stopped.
	stopped := ""
	for _, r := range results {
		if !r.pass && stopped == "" {
			stopped = todoIn(r.output)
		}
	}
	if stopped != "" {
		fmt.Fprintf(w, "Your program stops at %s: write it, and check again.\n", stopped)
	} else if failed := errorIn(results); failed != "" {
		// Not a stub: the program's own error, which the checks that
		// failed because of it may not show.
		fmt.Fprintf(w, "Your program failed: %s\n", failed)
	}
	sort.SliceStable(results, func(i, j int) bool { return results[i].pass && !results[j].pass })
	for _, r := range results {
		says, read := words(r)
		if r.pass {
			fmt.Fprintf(w, "  pass  %s\n", says)
			continue
		}
		fmt.Fprintf(w, "  FAIL  %s\n", says)
		if todoIn(r.output) == "" {
			for _, line := range why(r.output) {
				fmt.Fprintf(w, "          %s\n", line)
			}
		}
		fmt.Fprintf(w, "          read: %s\n", read)
	}
	return passed == len(results)
}

// todoLine finds the line a TODO stub printed: "TODO(03): what — see".
var todoLine = regexp.MustCompile(`TODO\(\d\d\): [^\n]*? — see`)

// todoIn is the TODO stub a check's output shows, without "— see …";
// "" if none.
func todoIn(output []string) string {
	for _, line := range output {
		if m := todoLine.FindString(line); m != "" {
			return strings.TrimSuffix(m, " — see")
		}
	}
	return ""
}

// errorLine finds a step's one-line error: "03-mount: error: ...".
var errorLine = regexp.MustCompile(`\b\d\d-[a-z]+: error: [^\n]*`)

// errorIn is the first error a step printed in a failed check (not one
// the check provoked on purpose: those checks pass); "" if none.
func errorIn(results []result) string {
	for _, r := range results {
		// Checks of bad input make the program fail on purpose.
		if r.pass || strings.Contains(r.name, "Bad") || strings.Contains(r.name, "Usage") {
			continue
		}
		for _, line := range r.output {
			if m := errorLine.FindString(line); m != "" {
				return strings.TrimRight(m, `"`)
			}
		}
	}
	return ""
}

// fileLine finds "file_test.go:123: " at the start of a test's message.
var fileLine = regexp.MustCompile(`^\s*\w+_test\.go:\d+: ?`)

// why picks, from a failed test's output, what tells the learner most:
// the test's first complaints about what the kernel showed, each on one
// line, at most three. testify writes a failure as a block ("Error
// Trace:", "Error:", "expected:", "actual  :", "Test:", "Messages:");
// a block becomes "MESSAGE: expected X, got Y". Other lines, such as a
// helper's t.Errorf, are taken as they are.
func why(output []string) []string {
	var out []string
	var msg, errText, expected, actual string
	flush := func() {
		line := errText
		if expected != "" || actual != "" {
			line = fmt.Sprintf("expected %s, got %s", expected, actual)
		}
		if msg != "" {
			line = msg + ": " + line
		}
		if line != "" {
			out = append(out, line)
		}
		msg, errText, expected, actual = "", "", "", ""
	}
	inBlock := false
	for _, raw := range output {
		line := strings.TrimSpace(raw)
		key, value, _ := strings.Cut(line, ":")
		value = strings.TrimSpace(value)
		switch {
		case line == "" || strings.HasPrefix(line, "=== ") || strings.HasPrefix(line, "--- "):
		case key == "Error Trace":
			if inBlock {
				flush()
			}
			inBlock = true
		case inBlock && key == "Error":
			if value != "Not equal:" {
				errText = value
			}
		case inBlock && key == "expected":
			expected = value
		case inBlock && strings.TrimSpace(key) == "actual":
			actual = value
		case inBlock && key == "Messages":
			msg = value
		case inBlock && key == "Test":
		case !inBlock && key == "Error":
			out = append(out, value)
		case fileLine.MatchString(raw):
			if inBlock {
				flush()
				inBlock = false
			}
			if text := strings.TrimSpace(fileLine.ReplaceAllString(raw, "")); text != "" {
				out = append(out, text)
			}
		case !inBlock && len(out) > 0 && len(out) < 3:
			// The next lines of a helper's message.
			out = append(out, line)
		}
	}
	if inBlock {
		flush()
	}
	for i, line := range out {
		if len(line) > 200 {
			out[i] = line[:197] + "..."
		}
	}
	if len(out) > 3 {
		out = out[:3]
	}
	if len(out) == 0 {
		out = []string{"(the check said nothing more)"}
	}
	return out
}

// keepNames notes the host's hostname and NIS domain name, and returns a
// function that puts them back if they changed, and tells the learner.
func keepNames(w io.Writer) func() {
	host, _ := os.ReadFile("/proc/sys/kernel/hostname")
	domain, _ := os.ReadFile("/proc/sys/kernel/domainname")
	return func() {
		for _, n := range []struct {
			file string
			was  []byte
			set  func([]byte) error
		}{
			{"/proc/sys/kernel/hostname", host, unix.Sethostname},
			{"/proc/sys/kernel/domainname", domain, unix.Setdomainname},
		} {
			now, err := os.ReadFile(n.file)
			if err != nil || n.was == nil || bytes.Equal(now, n.was) {
				continue
			}
			if n.set(bytes.TrimSpace(n.was)) == nil {
				fmt.Fprintf(w, "Your program changed the host's %s from %q to %q, outside a "+
					"UTS namespace of its own; the kit put it back.\n", filepath.Base(n.file),
					bytes.TrimSpace(n.was), bytes.TrimSpace(now))
			}
		}
	}
}

// NoStep says that there is no step nn, and what the learner may have
// meant.
func NoStep(nn string) string {
	msg := fmt.Sprintf("there is no step %s; the steps are %s", nn, strings.Join(Steps(), ", "))
	switch {
	case len(nn) == 1 && StepDir("0"+nn) != "":
		msg += fmt.Sprintf(" (two digits: %s)", "0"+nn)
	case nn == "09" || nn == "10":
		var have []string
		for _, id := range ExerciseList() {
			if strings.HasPrefix(id, nn+"-") {
				have = append(have, "check-"+id)
			}
		}
		what := map[string]string{"09": "final/", "10": "gocell-runtime"}[nn]
		msg = fmt.Sprintf("chapter %s (%s) has no workspace; its exercises have checks: %s",
			nn, what, strings.Join(have, ", "))
	}
	return msg
}

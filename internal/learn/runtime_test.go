package learn

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gocell/gocell/internal/celltest"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestExercises10: chapter 10's checks look at gocell-runtime's
// containers from outside. Each fails with nothing done, and with the
// exercise half done, saying what is missing; each passes after the
// exercise, done with gocell-runtime built from final/ for it, in a
// --root of the test's own (GOCELL_RUNTIME_ROOT). Every container,
// cgroup and file goes at the end, and the test checks that none is left.
func TestExercises10(t *testing.T) {
	celltest.RequirePriv(t)
	celltest.Rootfs(t)
	k := testKit(t)
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "gocell-runtime")
	// Static, as the chapter builds it: exec runs a copy of it inside
	// the container, where there is no dynamic loader.
	build := exec.Command("go", "build", "-o", bin, "./final/cmd/gocell-runtime")
	build.Dir, build.Env = k.Root, append(os.Environ(), "CGO_ENABLED=0")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "%s", out)
	root := filepath.Join(tmp, "state")
	t.Setenv(EnvRuntimeRoot, root)
	was := poststartFile
	poststartFile = filepath.Join(tmp, "poststart.json")
	t.Cleanup(func() { poststartFile = was })
	// The containers' cgroups: one unique prefix, looked for at the end.
	prefix := fmt.Sprintf("gocell-learn-test-%d-", os.Getpid())
	t.Cleanup(func() { assertNoRuntimeLeaks(t, prefix, tmp) })

	rt := func(args ...string) (string, string, error) {
		t.Helper()
		return runRuntime(t, bin, root, args...)
	}
	must := func(args ...string) string {
		t.Helper()
		stdout, stderr, err := rt(args...)
		require.NoError(t, err, "gocell-runtime %v: %s", args, stderr)
		return stdout
	}
	// deleteAll removes every container of the root, as a subtest's
	// last cleanup, before its bundles go.
	deleteAll := func() {
		entries, _ := os.ReadDir(root)
		for _, e := range entries {
			runRuntime(t, bin, root, "delete", "--force", e.Name())
		}
	}
	// bundle is what the chapter's /tmp/box is: the rootfs of the steps
	// (uid 100000's, reachable by it), gocell-runtime spec's config,
	// changed by edit, in a cgroup of the test's.
	bundle := func(t *testing.T, id string, edit func(*specs.Spec)) string {
		t.Helper()
		b := filepath.Dir(celltest.CopyRootfs(t, 100000, 100000))
		t.Cleanup(deleteAll)
		must("spec", "--bundle", b)
		file := filepath.Join(b, "config.json")
		data, err := os.ReadFile(file)
		require.NoError(t, err)
		var s specs.Spec
		require.NoError(t, json.Unmarshal(data, &s))
		s.Process.Args = []string{"sleep", "600"}
		s.Linux.CgroupsPath = "/" + prefix + id
		edit(&s)
		data, err = json.MarshalIndent(&s, "", "\t")
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(file, data, 0o644))
		return b
	}
	check := func(t *testing.T, ex string) (bool, string) {
		t.Helper()
		var buf bytes.Buffer
		ok, err := k.CheckExercise("10", ex, &buf)
		require.NoError(t, err)
		require.Regexp(t, `^check-10-`+ex+`: \d+ of \d+ checks pass\n`, buf.String())
		t.Logf("make check-10-%s:\n%s", ex, buf.String())
		return ok, buf.String()
	}

	t.Run("10-1", func(t *testing.T) {
		ok, out := check(t, "1")
		assert.False(t, ok, "no container passes:\n%s", out)
		assert.Contains(t, out, "  FAIL  a container of gocell-runtime is running\n")
		assert.Contains(t, out, "no container in "+root)
		assert.Contains(t, out, `read: lessons/10-oci.md, "Exercises", 1. A user namespace`)

		// Without a user namespace: the host's, and its maps.
		b := bundle(t, "plain", func(*specs.Spec) {})
		must("run", "--detach", "--bundle", b, "plain")
		ok, out = check(t, "1")
		assert.False(t, ok, "a container without a user namespace passes:\n%s", out)
		assert.Contains(t, out, "  pass  a container of gocell-runtime is running\n")
		assert.Contains(t, out, "plain (pid ")
		assert.Contains(t, out, `is in the host's user namespace: add {"type": "user"} to linux.namespaces`)
		must("delete", "--force", "plain")

		// The exercise: a user namespace, 0 -> 100000.
		b = bundle(t, "demo", func(s *specs.Spec) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
			s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
			s.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
			s.Process.Args = []string{"sh", "-c", "id; sleep 600"}
		})
		must("run", "--detach", "--bundle", b, "demo")
		ok, out = check(t, "1")
		assert.True(t, ok, "the exercise fails its check:\n%s", out)
		assert.Contains(t, out, "check-10-1: 4 of 4 checks pass\n")
		// And exec: root of the container's namespace.
		assert.Equal(t, "0\n", must("exec", "demo", "id", "-u"))
		ok, out = check(t, "1")
		assert.True(t, ok, "after exec:\n%s", out)
	})

	t.Run("10-2", func(t *testing.T) {
		ok, out := check(t, "2")
		assert.False(t, ok, "no hook passes:\n%s", out)
		assert.Contains(t, out, "there is no "+poststartFile+": add the poststart hook")

		// A state, but not a poststart's.
		require.NoError(t, os.WriteFile(poststartFile, []byte(`{"ociVersion": "1.2.0", "id": "x", "status": "created", "pid": 1, "bundle": "/nowhere"}`), 0o644))
		ok, out = check(t, "2")
		assert.False(t, ok, "a created state passes:\n%s", out)
		assert.Contains(t, out, `its status is "created"`)
		assert.Contains(t, out, "gocell-runtime has no container x in "+root)
		require.NoError(t, os.Remove(poststartFile))

		// The exercise: the hook writes its stdin, the state.
		b := bundle(t, "hook", func(s *specs.Spec) {
			s.Hooks = &specs.Hooks{Poststart: []specs.Hook{{Path: "/bin/sh",
				Args: []string{"sh", "-c", "cat > " + poststartFile}}}}
		})
		must("run", "--detach", "--bundle", b, "hook")
		ok, out = check(t, "2")
		assert.True(t, ok, "the exercise fails its check:\n%s", out)
		assert.Contains(t, out, "check-10-2: 3 of 3 checks pass\n")
		// A container gocell-runtime ran: gone, its bundle still says so.
		must("delete", "--force", "hook")
		ok, out = check(t, "2")
		assert.True(t, ok, "after delete:\n%s", out)
	})

	t.Run("10-3", func(t *testing.T) {
		ok, out := check(t, "3")
		assert.False(t, ok, "no container passes:\n%s", out)
		assert.Contains(t, out, "no container in "+root)

		// Refused by name, and nothing left.
		b := bundle(t, "huge", func(s *specs.Spec) {
			s.Linux.Resources.HugepageLimits = []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 0}}
		})
		_, stderr, err := rt("create", "--bundle", b, "huge")
		assert.Error(t, err, "hugepageLimits are refused")
		assert.Contains(t, stderr, "linux.resources.hugepageLimits")
		assert.NoDirExists(t, filepath.Join(root, "huge"))
		// What a runtime that left something would leave.
		require.NoError(t, os.MkdirAll(filepath.Join(root, "leftover"), 0o700))
		ok, out = check(t, "3")
		assert.False(t, ok, "a leftover passes:\n%s", out)
		assert.Contains(t, out, filepath.Join(root, "leftover")+" has no state.json")
		require.NoError(t, os.Remove(filepath.Join(root, "leftover")))

		// A container without a CPU set.
		b = bundle(t, "free", func(*specs.Spec) {})
		must("create", "--bundle", b, "free")
		ok, out = check(t, "3")
		assert.False(t, ok, "a container without cpus passes:\n%s", out)
		assert.Contains(t, out, "the config of free has no linux.resources.cpu.cpus")
		must("delete", "--force", "free")

		// The exercise: CPU 0 only, created, then running.
		b = bundle(t, "pinned", func(s *specs.Spec) {
			s.Linux.Resources.CPU = &specs.LinuxCPU{Cpus: "0"}
		})
		must("create", "--bundle", b, "pinned")
		ok, out = check(t, "3")
		assert.True(t, ok, "the exercise fails its check:\n%s", out)
		assert.Contains(t, out, "check-10-3: 4 of 4 checks pass\n")
		must("start", "pinned")
		ok, out = check(t, "3")
		assert.True(t, ok, "running:\n%s", out)
	})
}

// runRuntime runs gocell-runtime with --root root, and waits. Its output
// goes to files, not pipes: a container started by run --detach or
// create keeps them open.
func runRuntime(t *testing.T, bin, root string, args ...string) (string, string, error) {
	t.Helper()
	dir, err := os.MkdirTemp("", "gocell-learn-rt-")
	require.NoError(t, err)
	defer os.RemoveAll(dir)
	stdout, err := os.Create(filepath.Join(dir, "stdout"))
	require.NoError(t, err)
	defer stdout.Close()
	stderr, err := os.Create(filepath.Join(dir, "stderr"))
	require.NoError(t, err)
	defer stderr.Close()
	cmd := exec.Command(bin, append([]string{"--root", root}, args...)...)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	require.NoError(t, cmd.Start())
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		err = <-done
		t.Errorf("gocell-runtime %v timed out", args)
	}
	o, _ := os.ReadFile(stdout.Name())
	e, _ := os.ReadFile(stderr.Name())
	return string(o), string(e), err
}

// assertNoRuntimeLeaks removes, and reports, what the test's containers
// left: cgroups whose name starts with prefix, in every hierarchy, and
// mounts under dir.
func assertNoRuntimeLeaks(t *testing.T, prefix, dir string) {
	dirs, _ := filepath.Glob("/sys/fs/cgroup/" + prefix + "*")
	more, _ := filepath.Glob("/sys/fs/cgroup/*/" + prefix + "*")
	for _, d := range append(dirs, more...) {
		t.Errorf("cgroup %s left behind", d)
		os.Remove(d)
	}
	data, err := os.ReadFile("/proc/self/mountinfo")
	require.NoError(t, err)
	for _, line := range strings.Split(string(data), "\n") {
		assert.NotContains(t, line, dir, "a mount left behind")
	}
}

// TestCPUList: CPU lists as cpuset(7) writes them, compared as sets.
func TestCPUList(t *testing.T) {
	for _, c := range []struct {
		a, b string
		same bool
	}{
		{"0", "0", true}, {"0-2", "0,1,2", true}, {"0-1,3", "3,0-1", true},
		{"0", "0-1", false}, {"1", "0", false}, {"0-3\n", "0-3", true},
	} {
		same, err := sameCPUs(c.a, c.b)
		require.NoError(t, err)
		assert.Equal(t, c.same, same, "%q and %q", c.a, c.b)
	}
	_, err := sameCPUs("0-x", "0")
	assert.Error(t, err)
	assert.True(t, mapsZeroTo("         0     100000      65536\n", 100000))
	assert.False(t, mapsZeroTo("         0          0 4294967295\n", 100000))
}

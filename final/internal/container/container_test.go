package container

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gocell/gocell/internal/celltest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// These tests need no root: they work on a store in a temporary
// directory. The life cycle itself is tested end to end, from outside,
// by final/main_test.go.

func TestValidateName(t *testing.T) {
	for _, ok := range []string{"web", "a", "my_app.1-2", strings.Repeat("x", 128)} {
		assert.NoError(t, ValidateName(ok), ok)
	}
	for _, bad := range []string{"", "-web", ".x", "a/b", "a b", strings.Repeat("x", 129), "é"} {
		err := ValidateName(bad)
		assert.ErrorIs(t, err, ErrInvalidName, bad)
	}
}

func TestCreateGetList(t *testing.T) {
	s, err := Open(t.TempDir())
	require.NoError(t, err)
	a, err := s.Create("alpha", Spec{Image: "busybox", Args: []string{"true"}})
	require.NoError(t, err)
	assert.Len(t, a.ID, 64)
	assert.Equal(t, Created, a.Status)
	for _, sub := range []string{"upper", "work", "merged"} {
		assert.DirExists(t, filepath.Join(s.Dir(a.ID), sub), sub)
	}
	assert.FileExists(t, filepath.Join(s.Dir(a.ID), "state.json"))
	b, err := s.Create("", Spec{Image: "busybox"})
	require.NoError(t, err)
	assert.Equal(t, "gocell-"+b.ID[:12], b.Name, "a name made from the id")
	assert.Equal(t, b.ID[:12], b.Spec.Hostname, "a hostname made from the id")
	c, err := s.Create("", Spec{Image: "busybox", Hostname: "web"})
	require.NoError(t, err)
	stored, err := s.Get(c.ID)
	require.NoError(t, err)
	assert.Equal(t, "web", stored.Spec.Hostname, "a hostname asked for")
	require.NoError(t, os.RemoveAll(s.Dir(c.ID)))

	_, err = s.Create("alpha", Spec{})
	assert.ErrorIs(t, err, ErrNameInUse)
	_, err = s.Create("bad/name", Spec{})
	assert.ErrorIs(t, err, ErrInvalidName)

	for _, ref := range []string{a.ID, "alpha", a.ID[:12], a.ID[:4]} {
		got, err := s.Get(ref)
		if a.ID[:4] == b.ID[:4] && ref == a.ID[:4] {
			assert.ErrorIs(t, err, ErrAmbiguous)
			continue
		}
		require.NoError(t, err, ref)
		assert.Equal(t, a.ID, got.ID, ref)
	}
	_, err = s.Get("nope")
	assert.ErrorIs(t, err, ErrNotFound)
	_, err = s.Get(a.ID[:3])
	assert.ErrorIs(t, err, ErrNotFound, "prefixes need 4 digits")

	all, err := s.List()
	require.NoError(t, err)
	require.Len(t, all, 2)
	assert.Equal(t, a.ID, all[0].ID, "oldest first")
}

// TestSaveIsAtomic checks that saving leaves no temporary file behind
// and that Update sees and keeps a change.
func TestSaveIsAtomic(t *testing.T) {
	s, err := Open(t.TempDir())
	require.NoError(t, err)
	st, err := s.Create("x", Spec{})
	require.NoError(t, err)
	for i := 0; i < 20; i++ {
		_, err := s.Update(st.ID, func(st *State) error { st.ExitCode = i; return nil })
		require.NoError(t, err)
	}
	entries, err := os.ReadDir(s.Dir(st.ID))
	require.NoError(t, err)
	for _, e := range entries {
		assert.False(t, strings.HasPrefix(e.Name(), ".state-"), "temporary file left: %s", e.Name())
	}
	got, err := s.Get("x")
	require.NoError(t, err)
	assert.Equal(t, 19, got.ExitCode)
	_, err = s.Update(st.ID, func(*State) error { return errors.New("no") })
	assert.Error(t, err)
}

// TestReconcileDeadMonitor: a running container whose monitor is gone is
// shown as exited, with the reason.
func TestReconcileDeadMonitor(t *testing.T) {
	s, err := Open(t.TempDir())
	require.NoError(t, err)
	st, err := s.Create("ghost", Spec{})
	require.NoError(t, err)
	_, err = s.Update(st.ID, func(st *State) error {
		// A pid and start time that name no process.
		st.Status, st.Monitor, st.MonitorStart, st.Pid, st.PidStart = Running, 1, 1, 1, 1
		return nil
	})
	require.NoError(t, err)
	got, err := s.Get("ghost")
	require.NoError(t, err)
	assert.Equal(t, Stopped, got.Status)
	assert.Equal(t, 137, got.ExitCode)
	assert.Zero(t, got.Monitor)
	assert.Contains(t, got.Error, "monitor died")
	// rm needs no -f any more.
	_, err = s.Remove("ghost", false)
	require.NoError(t, err)
	assert.NoDirExists(t, s.Dir(st.ID))
}

func TestMergeEnv(t *testing.T) {
	env := mergeEnv([]string{"PATH=/bin", "A=1", "B=2"}, []string{"A=3", "C=4"})
	assert.Equal(t, []string{"PATH=/bin", "A=3", "B=2", "C=4"}, env)
	env = mergeEnv(nil, []string{"X=1"})
	assert.Contains(t, env, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "a PATH is always there")
}

func TestLookupID(t *testing.T) {
	root := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(root, "etc"), 0o755))
	passwd := filepath.Join(root, "etc", "passwd")
	require.NoError(t, os.WriteFile(passwd, []byte("root:x:0:0::/root:/bin/sh\nwww:x:33:44::/var/www:/bin/false\n"), 0o644))
	uid, gid, err := lookupID(root, "/etc/passwd", "www")
	require.NoError(t, err)
	assert.Equal(t, [2]uint32{33, 44}, [2]uint32{uid, gid})
	uid, gid, err = lookupID(root, "/etc/passwd", "1000")
	require.NoError(t, err)
	assert.Equal(t, [2]uint32{1000, 1000}, [2]uint32{uid, gid})
	_, _, err = lookupID(root, "/etc/passwd", "nobody-here")
	assert.Error(t, err)
}

// TestLookupOutsideRoot: the image's /etc/passwd, read from the host,
// may be a symlink to a host file, absolute or by "..": it is resolved
// inside the root, where it leads nowhere, and the host's file (with a
// user the image does not have) is never read. A FIFO is refused without
// blocking.
func TestLookupOutsideRoot(t *testing.T) {
	host := t.TempDir()
	hostPasswd := filepath.Join(host, "passwd")
	require.NoError(t, os.WriteFile(hostPasswd, []byte("secret:x:4242:4242::/:/bin/sh\n"), 0o644))
	for _, target := range []string{hostPasswd, "../../../../../../.." + hostPasswd} {
		root := t.TempDir()
		require.NoError(t, os.MkdirAll(filepath.Join(root, "etc"), 0o755))
		require.NoError(t, os.Symlink(target, filepath.Join(root, "etc", "passwd")))
		_, _, err := lookupUser(root, "secret")
		assert.Error(t, err, "the host's passwd was read through %s", target)
	}
	root := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(root, "etc"), 0o755))
	require.NoError(t, unix.Mkfifo(filepath.Join(root, "etc", "passwd"), 0o644))
	_, _, err := lookupUser(root, "anyone")
	assert.ErrorContains(t, err, "not a regular file")
}

// TestLookupKernelFiles: through a running container's root (exec -u
// NAME reads /proc/PID/root/etc/passwd), the image's /etc/passwd may lead
// into the container's procfs, whose files are regular ones: /proc/kmsg
// would give the host's root the kernel's log. A file of procfs or sysfs
// is refused. (The container's /proc is a procfs mounted in the root;
// here, a bind mount of the host's, removed after.)
func TestLookupKernelFiles(t *testing.T) {
	celltest.RequirePriv(t)
	root := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(root, "etc"), 0o755))
	require.NoError(t, os.MkdirAll(filepath.Join(root, "proc"), 0o755))
	require.NoError(t, unix.Mount("/proc", filepath.Join(root, "proc"), "", unix.MS_BIND, ""))
	t.Cleanup(func() { unix.Unmount(filepath.Join(root, "proc"), unix.MNT_DETACH) })
	require.NoError(t, os.Symlink("/proc/self/status", filepath.Join(root, "etc", "passwd")))
	_, _, err := lookupUser(root, "Name")
	assert.ErrorContains(t, err, "procfs or sysfs")
}

func TestParseReport(t *testing.T) {
	assert.Equal(t, startedReport(42), parseReport("ok 42\n"))
	assert.Equal(t, exitedReport(3), parseReport("exit 3\n"))
	r := parseReport("error 127 command not found: \"x\"\n")
	assert.Equal(t, report{kind: kindFailed, code: ExitNotFound, msg: `command not found: "x"`}, r)
	// Every report reads back as written, a message of two lines too.
	for _, r := range []report{startedReport(7), exitedReport(137), failedReport(ExitCannotRun, errors.New("no\nway"))} {
		got := parseReport(r.String() + "\n")
		if r.kind == kindFailed {
			r.msg = "no way"
		}
		assert.Equal(t, r, got)
	}
	// The writer died: a failure of gocell's own, without a message.
	for _, line := range []string{"", "garbage", "ok x"} {
		r := parseReport(line)
		assert.Equal(t, kindFailed, r.kind, line)
		assert.Equal(t, ExitRuntime, r.code, line)
	}
}

// TestCreateIsWhole: a Create killed half-way leaves only a .new-*
// directory (and a removal a .rm-* one), which List ignores and the next
// Create, or RemoveUnfinished, removes.
func TestCreateIsWhole(t *testing.T) {
	s, err := Open(t.TempDir())
	require.NoError(t, err)
	unfinished := filepath.Join(s.Root, "containers", ".new-0123456789abcdef")
	require.NoError(t, os.MkdirAll(filepath.Join(unfinished, "upper"), 0o755))
	all, err := s.List()
	require.NoError(t, err)
	assert.Empty(t, all)
	_, err = s.Create("", Spec{Image: "busybox"})
	require.NoError(t, err)
	assert.NoDirExists(t, unfinished)

	require.NoError(t, os.MkdirAll(unfinished, 0o755))
	removing := filepath.Join(s.Root, "containers", ".rm-0123456789abcdef")
	require.NoError(t, os.MkdirAll(filepath.Join(removing, "upper"), 0o755))
	require.NoError(t, s.RemoveUnfinished())
	assert.NoDirExists(t, unfinished)
	assert.NoDirExists(t, removing)
	entries, err := os.ReadDir(filepath.Join(s.Root, "containers"))
	require.NoError(t, err)
	for _, e := range entries {
		assert.False(t, strings.HasPrefix(e.Name(), ".new-"), e.Name())
	}
}

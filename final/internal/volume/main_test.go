package volume

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
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/gocell/gocell/internal/celltest"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// The privileged tests run MountAll in a child process in a new mount
// namespace, as a container's init would: unshare(CLONE_NEWNS) in the
// test process itself would only move the calling thread, and Go runs
// goroutines on many threads. The child is this test binary again, with
// envHelper naming a job file; it writes what it saw to a result file,
// says "done" and waits, with its mounts up, for the test to read its
// mount table. Its mounts die with it and its namespace.

// envHelper makes the test binary the child: its value is a job file.
const envHelper = "GOCELL_VOLUME_HELPER"

func TestMain(m *testing.M) {
	if job := os.Getenv(envHelper); job != "" {
		if err := helper(job); err != nil {
			fmt.Fprintln(os.Stderr, "volume helper:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// job is what the child does: one MountAll per step, each followed by
// reads and writes through the mounts.
type job struct {
	// Root is the fake merged root file system.
	Root string
	// Store, if set, is a volume store root: the child resolves
	// mounts with Store.Resolve. Otherwise Source is the host path.
	Store string
	Steps []step
}

type step struct {
	Mounts []Mount
	// Seed seeds named volumes from the image (SeedIn) first.
	Seed bool
	// Writes maps a path, as the child sees it, to the data to write.
	Writes map[string]string
	Reads  []string
}

// result is what the child saw.
type result struct {
	Steps []stepResult
	// Mounts is the child's mount table at the end, read by the test.
	Mounts []celltest.Mount `json:"-"`
}

type stepResult struct {
	// Err is MountAll's error; Invalid tells errors.Is(err, ErrInvalid).
	Err     string
	Invalid bool
	// Writes maps each path to "" (written) or an errno name.
	Writes map[string]string
	// Reads maps each path to its content or "error: ...".
	Reads map[string]string
}

// helper is the child's side.
func helper(jobFile string) error {
	b, err := os.ReadFile(jobFile)
	if err != nil {
		return err
	}
	var j job
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	// Like the container's init: nothing we mount may reach the host.
	// Equivalent to: mount --make-rprivate /
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make / private: %w", err)
	}
	resolve := func(m Mount) (string, error) { return m.Source, nil }
	var store *Store
	if j.Store != "" {
		if store, err = Open(j.Store); err != nil {
			return err
		}
		resolve = store.Resolve
	}
	var res result
	for _, s := range j.Steps {
		var r stepResult
		if s.Seed {
			for _, m := range s.Mounts {
				dir, err := store.Resolve(m)
				if err != nil {
					return err
				}
				if err := SeedIn(dir, j.Root, m.Destination); err != nil {
					return err
				}
			}
		}
		if err := MountAll(j.Root, s.Mounts, resolve); err != nil {
			r.Err = err.Error()
			r.Invalid = errors.Is(err, ErrInvalid)
		}
		r.Writes = map[string]string{}
		for path, data := range s.Writes {
			r.Writes[path] = errnoName(os.WriteFile(path, []byte(data), 0o644))
		}
		r.Reads = map[string]string{}
		for _, path := range s.Reads {
			b, err := os.ReadFile(path)
			if err != nil {
				r.Reads[path] = "error: " + errnoName(err)
				continue
			}
			r.Reads[path] = string(b)
		}
		res.Steps = append(res.Steps, r)
	}
	out, err := json.Marshal(res)
	if err != nil {
		return err
	}
	if err := os.WriteFile(jobFile+".out", out, 0o644); err != nil {
		return err
	}
	// Keep the mounts up until the test has read /proc/PID/mountinfo.
	fmt.Println("done")
	_, err = io.Copy(io.Discard, os.Stdin)
	return err
}

// errnoName names err's errno ("EROFS"), "" for no error.
func errnoName(err error) string {
	var errno unix.Errno
	switch {
	case err == nil:
		return ""
	case errors.As(err, &errno):
		return unix.ErrnoName(errno)
	default:
		return err.Error()
	}
}

// runChild runs j in a child in a new mount namespace and returns what
// it saw.
func runChild(t *testing.T, j job) result {
	t.Helper()
	dir := t.TempDir()
	jobFile := filepath.Join(dir, "job.json")
	b, err := json.Marshal(j)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(jobFile, b, 0o600))

	exe, err := os.Executable()
	require.NoError(t, err)
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), envHelper+"="+jobFile)
	// clone(2) the child straight into a new mount namespace.
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNS}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	defer stdin.Close() // lets the child go should the test stop early
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())

	var mounts []celltest.Mount
	done, _ := bufio.NewReader(stdout).ReadString('\n')
	if done == "done\n" {
		mounts = celltest.Mounts(t, strconv.Itoa(cmd.Process.Pid))
	}
	stdin.Close()
	require.NoError(t, cmd.Wait(), "child: %s", stderr.String())
	require.Equal(t, "done\n", done, "child: %s", stderr.String())

	b, err = os.ReadFile(jobFile + ".out")
	require.NoError(t, err)
	var res result
	require.NoError(t, json.Unmarshal(b, &res))
	require.Len(t, res.Steps, len(j.Steps))
	res.Mounts = mounts
	return res
}

// mountPoints is the set of the test process's mount points.
func mountPoints(t *testing.T) map[string]bool {
	t.Helper()
	set := map[string]bool{}
	for _, m := range celltest.Mounts(t, "self") {
		set[m.MountPoint] = true
	}
	return set
}

// newMounts splits the child's mounts into those under root, in order,
// and any others that the host had neither before nor after the child.
func newMounts(t *testing.T, res result, root string, before map[string]bool) (under []celltest.Mount, outside []string) {
	t.Helper()
	after := mountPoints(t)
	for _, m := range res.Mounts {
		switch {
		case m.MountPoint == root || strings.HasPrefix(m.MountPoint, root+"/"):
			under = append(under, m)
		case !before[m.MountPoint] && !after[m.MountPoint]:
			outside = append(outside, m.MountPoint)
		}
	}
	return under, outside
}

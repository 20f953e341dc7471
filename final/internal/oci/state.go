package oci

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/gocell/gocell/final/internal/cgroups"
	"github.com/gocell/gocell/final/internal/persist"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// DefaultRoot is where gocell-runtime keeps its containers' state, as
// runc keeps its in /run/runc: a tmpfs, gone with a reboot, as the
// containers are.
const DefaultRoot = "/run/gocell-runtime"

// record is what gocell-runtime keeps of a container, in
// ROOT/ID/state.json.
type record struct {
	ID          string            `json:"id"`
	Bundle      string            `json:"bundle"`
	Pid         int               `json:"pid"`
	Start       uint64            `json:"start"` // the process's start time, in ticks since boot
	Created     time.Time         `json:"created"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Cgroup      map[string]string `json:"cgroup"`
	// Spec is the config the container was made from: delete runs its
	// poststop hooks, exec takes its process's defaults, after the
	// bundle may have changed or gone.
	Spec *specs.Spec `json:"spec"`
}

// ErrNotExist is the error for an unknown container id.
var ErrNotExist = errors.New("container does not exist")

// ErrExist is the error for an id already in use.
var ErrExist = errors.New("container already exists")

// idRE is what a container id may be: a directory name, never a path.
var idRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.+-]*$`)

// checkID refuses an id that could not be a directory of its own.
func checkID(id string) error {
	if len(id) > 1024 || !idRE.MatchString(id) {
		return fmt.Errorf("container id %q: use letters, digits and _ . + - (not first), at most 1024", id)
	}
	return nil
}

// Runtime is gocell-runtime's state directory.
type Runtime struct {
	Root string
}

func (r *Runtime) dir(id string) string { return filepath.Join(r.Root, id) }

// lock takes the container's lock (flock(2) on its directory), so that
// two commands on one container do not interleave. It returns the
// function that releases it.
func (r *Runtime) lock(id string) (func(), error) {
	fd, err := unix.Open(r.dir(id), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENOENT) {
		return nil, fmt.Errorf("%s: %w", id, ErrNotExist)
	}
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(fd, unix.LOCK_EX); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return func() { unix.Close(fd) }, nil
}

// load reads a container's record.
func (r *Runtime) load(id string) (*record, error) {
	if err := checkID(id); err != nil {
		return nil, err
	}
	data, err := os.ReadFile(filepath.Join(r.dir(id), "state.json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", id, ErrNotExist)
	}
	if err != nil {
		return nil, err
	}
	var rec record
	if err := json.Unmarshal(data, &rec); err != nil {
		return nil, fmt.Errorf("%s: state.json: %w", id, err)
	}
	return &rec, nil
}

// save writes the record atomically: a temporary file, fsync, rename.
func (r *Runtime) save(rec *record) error {
	data, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	return persist.WriteFile(filepath.Join(r.dir(rec.ID), "state.json"), data, 0o600, true)
}

// alive tells whether the container's process is still the one it
// started, and not a zombie.
func (rec *record) alive() bool {
	st, err := persist.StartTime(rec.Pid)
	if err != nil || st != rec.Start {
		return false
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", rec.Pid))
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(data), ')')
	f := strings.Fields(string(data[i+1:]))
	return len(f) > 0 && f[0] != "Z" && f[0] != "X"
}

// status says where the container is in its life cycle: created until
// start opens its FIFO, running while its process lives, stopped after.
// runtime-spec, "State"
func (r *Runtime) status(rec *record) specs.ContainerState {
	if !rec.alive() {
		return specs.StateStopped
	}
	if _, err := os.Lstat(filepath.Join(r.dir(rec.ID), fifoName)); err == nil {
		return specs.StateCreated
	}
	// Not in runtime-spec's list, but what runc says of a frozen
	// container, and what its clients (containerd, podman) expect.
	if frozen, _ := cgroups.Load(rec.Cgroup).Frozen(); frozen {
		return StatePaused
	}
	return specs.StateRunning
}

// StatePaused is the status of a frozen container (runc's word).
const StatePaused specs.ContainerState = "paused"

// fifoName is the FIFO that holds the container's process between create
// and start.
const fifoName = "exec.fifo"

// State returns the container's state, as runtime-spec defines it.
func (r *Runtime) State(id string) (*specs.State, error) {
	rec, err := r.load(id)
	if err != nil {
		return nil, err
	}
	return r.specState(rec, r.status(rec)), nil
}

func (r *Runtime) specState(rec *record, status specs.ContainerState) *specs.State {
	st := &specs.State{Version: specs.Version, ID: rec.ID, Status: status,
		Bundle: rec.Bundle, Annotations: rec.Annotations}
	if status != specs.StateStopped {
		st.Pid = rec.Pid
	}
	return st
}

// List returns the states of every container, by id.
func (r *Runtime) List() ([]*specs.State, error) {
	entries, err := os.ReadDir(r.Root)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []*specs.State
	for _, e := range entries {
		if st, err := r.State(e.Name()); err == nil {
			out = append(out, st)
		}
	}
	return out, nil
}

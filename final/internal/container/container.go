// Package container owns containers: their state on disk, their life
// cycle (create, start, stop, kill, pause, remove), and the monitor
// process that looks after a running container from the host.
//
// Each container is a directory under <root>/containers/<id>, which is
// also its OCI bundle (see bundle.go):
//
//	state.json   the State below, written atomically (temp file, fsync,
//	             rename) under an flock(2) on the lock file
//	lock         the lock file
//	config.json  the runtime spec of its last start (gocell inspect --spec)
//	upper, work  the overlay's writable layer, which dies with the container
//	merged       the bundle's root.path, where the overlay is mounted,
//	             in the monitor's mount namespace and the container's only
//	container.log  the container's output, one JSON object per line
//	monitor.log  what the monitor itself had to say, if anything
//	etc/         the hosts, hostname and resolv.conf the container gets
//
// Two processes make a running container. The CLI (gocell run/start)
// spawns a monitor and leaves, unless it stays attached. The monitor
// lives on the host, as podman's conmon does: it mounts the root file
// system, writes the bundle, has the runtime (package oci, the code of
// gocell-runtime) create the container, puts it on its network, starts
// it, writes its output to the log, records its exit status and removes
// what the run made. The container's process is the command itself,
// pid 1 of its namespaces, as with Docker. `gocell exec` goes through
// the runtime too (exec.go).
package container

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/gocell/gocell/final/internal/names"
	"github.com/gocell/gocell/final/internal/network"
	"github.com/gocell/gocell/final/internal/persist"
	"github.com/gocell/gocell/final/internal/volume"
	"golang.org/x/sys/unix"
)

// Status is where a container is in its life.
type Status string

// The statuses, as Docker names them.
const (
	Created Status = "created"
	Running Status = "running"
	Paused  Status = "paused"
	Stopped Status = "exited"
)

// Sentinel errors the CLI maps to messages and exit codes with errors.Is.
var (
	ErrNotFound        = errors.New("no such container")
	ErrNameInUse       = errors.New("name already in use")
	ErrInvalidName     = errors.New("invalid container name")
	ErrNotRunning      = errors.New("container is not running")
	ErrRunning         = errors.New("container is running")
	ErrNotPaused       = errors.New("container is not paused")
	ErrAmbiguous       = errors.New("more than one container matches")
	ErrCannotStart     = errors.New("container cannot start")
	ErrCommandNotFound = errors.New("command not found")
)

// Resources are the cgroup limits of a container; 0 means none. They
// mean what the fields of cgroups.Resources with the same names mean.
type Resources struct {
	MemoryBytes int64   `json:"memoryBytes,omitempty"`
	PidsMax     int64   `json:"pidsMax,omitempty"`
	CPUs        float64 `json:"cpus,omitempty"`
	// MemorySwapBytes is memory plus swap: 0 none beyond MemoryBytes,
	// -1 unlimited (Docker's --memory-swap).
	MemorySwapBytes        int64  `json:"memorySwapBytes,omitempty"`
	MemoryReservationBytes int64  `json:"memoryReservationBytes,omitempty"`
	CPUShares              uint64 `json:"cpuShares,omitempty"`
	// CPUSetCPUs and CPUSetMems pin the container to CPUs and memory
	// nodes, in the kernel's list format ("0-1,3").
	CPUSetCPUs string `json:"cpusetCpus,omitempty"`
	CPUSetMems string `json:"cpusetMems,omitempty"`
}

// Spec is everything needed to start a container, fixed at create time.
type Spec struct {
	// Image is the reference the user gave, ImageID what it resolved to.
	Image   string `json:"image"`
	ImageID string `json:"imageId"`
	// Layers are the image's unpacked layer directories, top first: the
	// overlay's lowerdir.
	Layers []string `json:"layers"`
	// Args is the command: the image's Entrypoint and Cmd, or what the
	// user gave instead.
	Args        []string `json:"args"`
	Env         []string `json:"env"`
	WorkingDir  string   `json:"workingDir,omitempty"`
	User        string   `json:"user,omitempty"`
	Hostname    string   `json:"hostname"`
	Tty         bool     `json:"tty,omitempty"`
	Interactive bool     `json:"interactive,omitempty"`
	// Network is "bridge" (the default network), another network's
	// name, "none", "host", or "container:NAME" to share NAME's.
	Network   string         `json:"network"`
	Ports     []network.Port `json:"ports,omitempty"`
	Mounts    []volume.Mount `json:"mounts,omitempty"`
	Resources Resources      `json:"resources"`
	// AutoRemove is --rm: the container is removed when it stops.
	AutoRemove bool `json:"autoRemove,omitempty"`
	// UserNS is --userns: the container's processes run in a user
	// namespace of their own, root inside being UserNSHostID outside.
	UserNS bool `json:"userns,omitempty"`
	// Seccomp is the system call filter: "" for Docker's default
	// profile, SeccompUnconfined for none, or SeccompCustom for
	// SeccompProfile, a profile in Docker's JSON format.
	Seccomp        string          `json:"seccomp,omitempty"`
	SeccompProfile json.RawMessage `json:"seccompProfile,omitempty"`
	// NoNewPrivileges sets no_new_privs on every process: set-user-ID
	// programs and file capabilities give nothing.
	NoNewPrivileges bool `json:"noNewPrivileges,omitempty"`
	// CapAdd and CapDrop change Docker's capabilities (spawn.Adjust).
	CapAdd  []string `json:"capAdd,omitempty"`
	CapDrop []string `json:"capDrop,omitempty"`
	// ReadOnly mounts the root read-only, with tmpfs at /tmp and /run.
	ReadOnly bool `json:"readOnly,omitempty"`
	// Tmpfs are --tmpfs mounts: PATH or PATH:OPTIONS (size=64m,mode=1777).
	Tmpfs []string `json:"tmpfs,omitempty"`
	// ExtraHosts are --add-host lines, NAME:IP, for /etc/hosts.
	ExtraHosts []string `json:"extraHosts,omitempty"`
	// Labels are --label KEY=VALUE: the user's notes, kept and shown.
	Labels map[string]string `json:"labels,omitempty"`
	// StopSignal is what stop sends first ("" is SIGTERM); StopTimeout
	// how long stop waits before SIGKILL, when stop -t does not say.
	StopSignal  string `json:"stopSignal,omitempty"`
	StopTimeout *int   `json:"stopTimeout,omitempty"`
	// Restart is --restart: what to do when the command ends.
	Restart RestartPolicy `json:"restart,omitempty"`
}

// RestartPolicy is Docker's --restart: "no" (or ""), "always",
// "unless-stopped" (the same as always: gocell has no daemon to restart),
// or "on-failure" with at most MaxRetries restarts (0: no limit). A stop,
// kill or rm by the user is never undone by it.
type RestartPolicy struct {
	Name       string `json:"name,omitempty"`
	MaxRetries int    `json:"maxRetries,omitempty"`
}

// The values of Spec.Seccomp besides the default "".
const (
	SeccompUnconfined = "unconfined"
	SeccompCustom     = "custom"
)

// The id map of a --userns container, as in step 06: ids 0 to 65535
// inside are UserNSHostID and up outside. user_namespaces(7)
const (
	UserNSHostID = 100000
	UserNSSize   = 65536
)

// State is what state.json holds.
type State struct {
	ID      string    `json:"id"`
	Name    string    `json:"name"`
	Created time.Time `json:"created"`
	Spec    Spec      `json:"spec"`
	Status  Status    `json:"status"`
	// Pid is the container's process as the host sees it; Monitor is its
	// monitor. Each comes with its start time (from /proc/PID/stat), so
	// a recycled pid is not mistaken for them.
	Pid          int       `json:"pid,omitempty"`
	PidStart     uint64    `json:"pidStart,omitempty"`
	Monitor      int       `json:"monitor,omitempty"`
	MonitorStart uint64    `json:"monitorStart,omitempty"`
	StartedAt    time.Time `json:"startedAt,omitempty"`
	FinishedAt   time.Time `json:"finishedAt,omitempty"`
	ExitCode     int       `json:"exitCode"`
	OOMKilled    bool      `json:"oomKilled,omitempty"`
	// RestartCount counts the restarts of its restart policy since the
	// last start by the user; StopRequested is set by stop, kill and
	// rm -f, so that the policy does not undo them.
	RestartCount  int  `json:"restartCount,omitempty"`
	StopRequested bool `json:"stopRequested,omitempty"`
	// Error says why the last start failed, if it did.
	Error string `json:"error,omitempty"`
	// Cgroup records the cgroup directories, so they can be removed even
	// when the monitor that made them died.
	Cgroup map[string]string `json:"cgroup,omitempty"`
	// Endpoint is the container's place on its network, for the same
	// reason.
	Endpoint *network.Endpoint `json:"endpoint,omitempty"`
}

// Store is the containers of one gocell root.
type Store struct {
	Root string
	// Network configures the networks (default subnet and bridge); its
	// StateDir is set by Open.
	Network network.Options
}

// Open returns the store under root, creating its directory.
func Open(root string) (*Store, error) {
	dir := filepath.Join(root, "containers")
	// 0700, the root included: see image.Open. A container's upper
	// layer may hold set-user-ID files its root made.
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("open container store: %w", err)
	}
	for _, d := range []string{root, dir} {
		if err := os.Chmod(d, 0o700); err != nil {
			return nil, fmt.Errorf("open container store: %w", err)
		}
	}
	return &Store{Root: root, Network: network.Options{StateDir: filepath.Join(root, "network")}}, nil
}

// Networks opens the network manager of this root.
func (s *Store) Networks() (*network.Manager, error) {
	return network.Open(s.Network)
}

// Volumes opens the volume store of this root.
func (s *Store) Volumes() (*volume.Store, error) {
	return volume.Open(s.Root)
}

// IsSpecialNetwork says whether a --network value needs no network of
// gocell's: none, host or container:NAME.
func IsSpecialNetwork(name string) bool {
	return name == "none" || name == "host" || strings.HasPrefix(name, "container:")
}

// Dir is the directory of the container with this id.
func (s *Store) Dir(id string) string {
	return filepath.Join(s.Root, "containers", id)
}

// ValidateName checks a container name: Docker's rule (package names).
func ValidateName(name string) error {
	if !names.Valid(name, names.MaxContainer) {
		return fmt.Errorf("%w %q: %s", ErrInvalidName, name,
			names.Rule(names.MaxContainer))
	}
	return nil
}

// Create records a new container, in status created, with its own
// writable layer. An empty name gets one made from the id, and an empty
// hostname is the id's first 12 digits, as in Docker.
func (s *Store) Create(name string, spec Spec) (*State, error) {
	unlock, err := s.lockStore()
	if err != nil {
		return nil, err
	}
	defer unlock()
	id, err := newID()
	if err != nil {
		return nil, err
	}
	if name == "" {
		name = "gocell-" + id[:12]
	}
	if spec.Hostname == "" {
		spec.Hostname = id[:12]
	}
	if err := s.nameFree(name); err != nil {
		return nil, err
	}
	// Made under a temporary name and renamed into place, whole: killed
	// half-way, we leave a .new-* directory that nobody takes for a
	// container, and that the next Create or RemoveUnfinished removes.
	// rename(2)
	s.removeUnfinished()
	tmp := filepath.Join(s.Root, "containers", ".new-"+id)
	st := &State{ID: id, Name: name, Created: time.Now().UTC(), Spec: spec, Status: Created}
	err = func() error {
		for _, sub := range []string{"upper", "work", "merged"} {
			if err := os.MkdirAll(filepath.Join(tmp, sub), 0o755); err != nil {
				return err
			}
		}
		if spec.UserNS {
			// The top of the writable layer is the container's "/":
			// its root must own it, as host uid UserNSHostID.
			if err := os.Chown(filepath.Join(tmp, "upper"), UserNSHostID, UserNSHostID); err != nil {
				return err
			}
		}
		if err := s.saveIn(tmp, st); err != nil {
			return err
		}
		return os.Rename(tmp, s.Dir(id))
	}()
	if err != nil {
		os.RemoveAll(tmp)
		return nil, fmt.Errorf("create container: %w", err)
	}
	return st, nil
}

// nameFree checks that name is a valid name no container has. The
// caller holds the store's lock.
func (s *Store) nameFree(name string) error {
	if err := ValidateName(name); err != nil {
		return err
	}
	all, err := s.List()
	if err != nil {
		return err
	}
	for _, c := range all {
		if c.Name == name {
			return fmt.Errorf("%w: %q is container %s; remove it "+
				"or choose another name", ErrNameInUse, name, c.ID[:12])
		}
	}
	return nil
}

// Rename gives a container another name, as docker rename. On its
// network, containers started after find it by the new name; the
// /etc/hosts of those running keep what they were given at their start
// (gocell has no DNS server to ask each time, as Docker's).
func (s *Store) Rename(ref, name string) (*State, error) {
	unlock, err := s.lockStore()
	if err != nil {
		return nil, err
	}
	defer unlock()
	st, err := s.Get(ref)
	if err != nil {
		return nil, err
	}
	if err := s.nameFree(name); err != nil {
		return nil, err
	}
	return s.Update(st.ID, func(st *State) error {
		if ep := st.Endpoint; ep != nil && ep.Name != "" {
			nm, err := s.Networks()
			if err != nil {
				return err
			}
			if err := nm.Rename(ep, name); err != nil {
				return err
			}
			ep.Name = name
		}
		st.Name = name
		return nil
	})
}

// RemoveUnfinished removes what a Create or a removal killed half-way
// left: the .new-* and .rm-* directories under containers/.
func (s *Store) RemoveUnfinished() error {
	unlock, err := s.lockStore()
	if err != nil {
		return err
	}
	defer unlock()
	return s.removeUnfinished()
}

// removeUnfinished is RemoveUnfinished with the store's lock held: no
// Create is making a .new-* directory meanwhile, so any there is stale. A
// .rm-* may be one that a removal is emptying right now; removing it too
// does no harm.
func (s *Store) removeUnfinished() error {
	containers := filepath.Join(s.Root, "containers")
	stale, err := filepath.Glob(filepath.Join(containers, ".new-*"))
	removing, err2 := filepath.Glob(filepath.Join(containers, ".rm-*"))
	stale = append(stale, removing...)
	err = errors.Join(err, err2)
	var errs []error
	for _, dir := range stale {
		errs = append(errs, os.RemoveAll(dir))
	}
	return errors.Join(append(errs, err)...)
}

// newID makes a random 64-hex-digit id, like Docker's.
func newID() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("make id: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// Get finds a container by full id, unique id prefix or name, and brings
// its state up to date with the processes (see reconcile).
func (s *Store) Get(ref string) (*State, error) {
	all, err := s.List()
	if err != nil {
		return nil, err
	}
	var found []*State
	for _, c := range all {
		switch {
		case c.ID == ref || c.Name == ref:
			return c, nil
		case len(ref) >= 4 && strings.HasPrefix(c.ID, ref):
			found = append(found, c)
		}
	}
	switch len(found) {
	case 0:
		return nil, fmt.Errorf("%w: %s", ErrNotFound, ref)
	case 1:
		return found[0], nil
	}
	return nil, fmt.Errorf("%w: %s", ErrAmbiguous, ref)
}

// List returns every container, oldest first, reconciled.
func (s *Store) List() ([]*State, error) {
	return s.list(s.load)
}

// Names lists the containers' names as their states say, without
// bringing any up to date with its processes (reconcile): shell
// completion reads them at each Tab, and must change nothing.
func (s *Store) Names() ([]string, error) {
	all, err := s.list(s.read)
	var out []string
	for _, st := range all {
		out = append(out, st.Name)
	}
	return out, err
}

// list reads every container's state with read.
func (s *Store) list(read func(id string) (*State, error)) ([]*State, error) {
	entries, err := os.ReadDir(filepath.Join(s.Root, "containers"))
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	var all []*State
	for _, e := range entries {
		// Only full ids: not the store's lock or temporary files.
		if !names.HexID(e.Name(), 64, 64) {
			continue
		}
		st, err := read(e.Name())
		if err != nil {
			// Half-created (a crash between mkdir and the first save).
			continue
		}
		all = append(all, st)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].Created.Before(all[j].Created) })
	return all, nil
}

// load reads a container's state and reconciles it.
func (s *Store) load(id string) (*State, error) {
	st, err := s.read(id)
	if err != nil {
		return nil, err
	}
	return s.reconcile(st)
}

// read reads state.json as it is.
func (s *Store) read(id string) (*State, error) {
	data, err := os.ReadFile(filepath.Join(s.Dir(id), "state.json"))
	if err != nil {
		return nil, err
	}
	var st State
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("state of %s: %w", id, err)
	}
	return &st, nil
}

// save writes state.json atomically: a temporary file, fsync, rename.
// A reader sees the old state or the new one, never half of one, even
// if we are killed in the middle.
func (s *Store) save(st *State) error { return s.saveIn(s.Dir(st.ID), st) }

// saveIn is save into the directory dir.
func (s *Store) saveIn(dir string, st *State) error {
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	if err := persist.WriteFile(filepath.Join(dir, "state.json"), data, 0o600, true); err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	return nil
}

// Update changes a container's state under its lock: fn sees the current
// state and may change it; the result is saved.
func (s *Store) Update(id string, fn func(*State) error) (*State, error) {
	unlock, err := lockFile(filepath.Join(s.Dir(id), "lock"))
	if err != nil {
		return nil, err
	}
	defer unlock()
	st, err := s.read(id)
	if err != nil {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	if err := fn(st); err != nil {
		return nil, err
	}
	return st, s.save(st)
}

// lockStore serialises creations, so two containers cannot take the
// same name.
func (s *Store) lockStore() (func(), error) {
	return lockFile(filepath.Join(s.Root, "containers", ".lock"))
}

// lockFile takes an exclusive flock(2) on path, creating it, and returns
// the function that releases it.
func lockFile(path string) (func(), error) { return persist.Lock(path, unix.LOCK_EX) }

// alive reports whether the process pid, started at start, still runs
// (a zombie does not count).
func alive(pid int, start uint64) bool {
	if pid <= 0 {
		return false
	}
	got, err := persist.StartTime(pid)
	if err != nil || got != start {
		return false
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(data)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) > 0 && f[0] == "Z" {
		// A zombie leader with threads still running is a process
		// that lives on: while a thread other than the leader executes
		// a program, the leader waits as a zombie for it to take its
		// place (execve(2)). gocell's own exec from the main thread,
		// but a process is alive as long as one of its threads is.
		tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
		return len(tasks) > 1
	}
	return len(f) > 0
}

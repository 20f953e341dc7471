package learn

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// The checks of chapter 10's exercises look at gocell-runtime's
// containers from outside, as the chapter's session leaves them: the
// runtime's state directory says which containers there are, their pids
// and their configs; the kernel (/proc/PID, cgroupfs) gives the verdict.

// EnvRuntimeRoot names the gocell-runtime --root the chapter 10 checks
// look at, for a learner who gave the runtime another one.
const EnvRuntimeRoot = "GOCELL_RUNTIME_ROOT"

// RuntimeRoot is the gocell-runtime root the chapter 10 checks look at:
// the GOCELL_RUNTIME_ROOT of the environment, or else the runtime's
// default, /run/gocell-runtime.
func RuntimeRoot() string {
	if r := os.Getenv(EnvRuntimeRoot); r != "" {
		return r
	}
	return "/run/gocell-runtime"
}

// poststartFile is where exercise 2's hook writes the container's state
// (the kit's tests write it elsewhere).
var poststartFile = "/tmp/poststart.json"

// rtContainer is what the checks read of one of gocell-runtime's
// containers, in ROOT/ID/state.json, and its status, from the kernel.
type rtContainer struct {
	ID     string      `json:"id"`
	Bundle string      `json:"bundle"`
	Pid    int         `json:"pid"`
	Start  uint64      `json:"start"` // the process's start time, field 22 of /proc/PID/stat
	Spec   *specs.Spec `json:"spec"`  // the config it was made from
	status specs.ContainerState
}

// runtimeContainers reads the containers under root, by id, and lists
// the directories there without a state.json: what a failed create
// would have left.
func runtimeContainers(root string) ([]*rtContainer, []string, error) {
	entries, err := os.ReadDir(root)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	var out []*rtContainer
	var left []string
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		dir := filepath.Join(root, e.Name())
		data, err := os.ReadFile(filepath.Join(dir, "state.json"))
		if errors.Is(err, os.ErrNotExist) {
			left = append(left, dir)
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		c := &rtContainer{}
		if err := json.Unmarshal(data, c); err != nil {
			return nil, nil, fmt.Errorf("%s/state.json: %v", dir, err)
		}
		if c.Spec == nil {
			// The bundle's config, if the state did not keep its own.
			if data, err := os.ReadFile(filepath.Join(c.Bundle, "config.json")); err == nil {
				var s specs.Spec
				if json.Unmarshal(data, &s) == nil {
					c.Spec = &s
				}
			}
		}
		// Created while its process waits on the FIFO that start opens
		// (as gocell-runtime state says), running after (paused too:
		// a frozen process is still there), stopped when the process it
		// started has gone.
		c.status = specs.StateStopped
		if alive(c.Pid, c.Start) {
			c.status = specs.StateRunning
			if _, err := os.Lstat(filepath.Join(dir, "exec.fifo")); err == nil {
				c.status = specs.StateCreated
			}
		}
		out = append(out, c)
	}
	return out, left, nil
}

// alive tells whether pid is still the process that started at start
// (0: not known), and not a zombie.
func alive(pid int, start uint64) bool {
	if pid <= 0 {
		return false
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(data), ')')
	if i < 0 {
		return false
	}
	// f[0] is field 3, the state; field 22, the start time, is f[19].
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 20 || f[0] == "Z" || f[0] == "X" {
		return false
	}
	return start == 0 || f[19] == strconv.FormatUint(start, 10)
}

// verdict is a check that passed (err nil) or failed, saying why.
func verdict(name string, err error) result {
	r := result{name: name, pass: err == nil}
	if err != nil {
		r.output = []string{"Error: " + err.Error()}
	}
	return r
}

// noneHint is what to do when the root holds no container.
func noneHint(root string) string {
	return fmt.Sprintf("no container in %s (another --root? set %s to it)", root, EnvRuntimeRoot)
}

// pick chooses, among the containers in one of the states ok, the first
// that good says is the exercise's, or else the first; it says why none
// is there.
func pick(root string, cs []*rtContainer, ok []specs.ContainerState, good func(*rtContainer) bool, how string) (*rtContainer, error) {
	var live []*rtContainer
	var created, stopped []string
	for _, c := range cs {
		switch {
		case c.status == specs.StateStopped:
			stopped = append(stopped, c.ID)
		case c.status == specs.StateCreated && !hasState(ok, c.status):
			created = append(created, c.ID)
		case hasState(ok, c.status):
			live = append(live, c)
		}
	}
	for _, c := range live {
		if good(c) {
			return c, nil
		}
	}
	if len(live) > 0 {
		return live[0], nil
	}
	switch {
	case len(created) > 0:
		return nil, fmt.Errorf("%s is created, not started: sudo gocell-runtime start %s", created[0], created[0])
	case len(stopped) > 0:
		return nil, fmt.Errorf("%s has stopped (its process is gone): sudo gocell-runtime delete %s, and %s",
			strings.Join(stopped, ", "), stopped[0], how)
	}
	return nil, fmt.Errorf("%s; %s", noneHint(root), how)
}

func hasState(states []specs.ContainerState, s specs.ContainerState) bool {
	for _, x := range states {
		if x == s {
			return true
		}
	}
	return false
}

// statusField is a field of /proc/PID/status ("Uid"), its value trimmed.
func statusField(pid int, field string) (string, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			return strings.TrimSpace(v), nil
		}
	}
	return "", fmt.Errorf("no %s: line in /proc/%d/status", field, pid)
}

// ownUserNS tells whether pid's user namespace is not this process's
// (the host's: the checks run there).
func ownUserNS(pid int) (bool, error) {
	mine, err := os.Readlink("/proc/self/ns/user")
	if err != nil {
		return false, err
	}
	its, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/user", pid))
	if err != nil {
		return false, err
	}
	return its != mine, nil
}

// mapsZeroTo tells whether an id map (/proc/PID/uid_map) maps 0 inside
// to host outside.
func mapsZeroTo(idMap string, host int) bool {
	for _, line := range strings.Split(idMap, "\n") {
		f := strings.Fields(line)
		if len(f) == 3 && f[0] == "0" && f[1] == strconv.Itoa(host) {
			return true
		}
	}
	return false
}

// checkUserNS is exercise 1 of chapter 10: a running container whose
// process is in a user namespace of its own, mapping 0 to 100000, and so
// uid 100000 on the host. (Exec joins that namespace too; the check does
// not ask for an exec'd process.)
func checkUserNS(root string) []result {
	const host = 100000
	first := "a container of gocell-runtime is running"
	cs, _, err := runtimeContainers(root)
	if err != nil {
		return []result{verdict(first, err)}
	}
	c, err := pick(root, cs, []specs.ContainerState{specs.StateRunning}, func(c *rtContainer) bool {
		own, _ := ownUserNS(c.Pid)
		return own
	}, "run one in /tmp/box as exercise 1 says: sudo gocell-runtime run --detach demo")
	if err != nil {
		return []result{verdict(first, err)}
	}
	out := []result{verdict(first, nil)}
	config := filepath.Join(c.Bundle, "config.json")
	own, err := ownUserNS(c.Pid)
	if err == nil && !own {
		err = fmt.Errorf("%s (pid %d) is in the host's user namespace: add {\"type\": \"user\"} to "+
			"linux.namespaces in %s, delete the container and run it again", c.ID, c.Pid, config)
	}
	out = append(out, verdict("its process is in a user namespace of its own, not the host's (/proc/PID/ns/user)", err))
	// The maps are read whether or not the namespace is the host's,
	// whose maps are 0 0 4294967295.
	err = nil
	for _, kind := range []string{"uid", "gid"} {
		if err != nil {
			break
		}
		var m []byte
		m, err = os.ReadFile(fmt.Sprintf("/proc/%d/%s_map", c.Pid, kind))
		if err == nil && !mapsZeroTo(string(m), host) {
			err = fmt.Errorf("/proc/%d/%s_map is %q, with no 0 %d: add \"%sMappings\": [{\"containerID\": 0, "+
				"\"hostID\": %d, \"size\": 65536}] to linux in %s", c.Pid, kind,
				strings.Join(strings.Fields(string(m)), " "), host, kind, host, config)
		}
	}
	out = append(out, verdict("that namespace maps uid 0 and gid 0 inside to 100000 on the host (/proc/PID/uid_map, gid_map)", err))
	uid, err := statusField(c.Pid, "Uid")
	if f := strings.Fields(uid); err == nil && (len(f) < 2 || f[0] != strconv.Itoa(host) || f[1] != strconv.Itoa(host)) {
		fix := "with the namespace and its maps, the container's root is"
		if own {
			fix = "leave process.user at uid 0, the namespace's root, which is"
		}
		err = fmt.Errorf("pid %d of %s is uid %s on the host (real, effective, saved, fs): %s %d there",
			c.Pid, c.ID, strings.Join(f, " "), fix, host)
	}
	return append(out, verdict("its root is uid 100000 on the host (the Uid: line of /proc/PID/status)", err))
}

// checkPoststart is exercise 2 of chapter 10: the poststart hook wrote
// the container's state, as runtime-spec defines it, with the status
// running, to /tmp/poststart.json; its id is one of gocell-runtime's
// containers, or was (its bundle's config.json has a poststart hook).
func checkPoststart(root string) []result {
	first := fmt.Sprintf("%s holds a container's state, as runtime-spec defines it", poststartFile)
	data, err := os.ReadFile(poststartFile)
	if errors.Is(err, os.ErrNotExist) {
		err = fmt.Errorf("there is no %s: add the poststart hook of exercise 2 to config.json, "+
			"and run the container: sudo gocell-runtime run --detach demo", poststartFile)
	}
	if err != nil {
		return []result{verdict(first, err)}
	}
	var st specs.State
	if err := json.Unmarshal(data, &st); err != nil || st.Version == "" || st.ID == "" || st.Status == "" {
		text := strings.TrimSpace(string(data))
		if len(text) > 60 {
			text = text[:57] + "..."
		}
		return []result{verdict(first, fmt.Errorf("%s holds %q, not a state with ociVersion, id and status: "+
			"is the hook's command cat > %s, reading its stdin?", poststartFile, text, poststartFile))}
	}
	out := []result{verdict(first, nil)}
	err = nil
	if st.Status != specs.StateRunning || st.Pid <= 0 {
		err = fmt.Errorf("its status is %q (pid %d): a poststart hook runs after start, with the status "+
			"running; is it under \"poststart\" in hooks?", st.Status, st.Pid)
	}
	out = append(out, verdict("its status is running, with a pid: poststart hooks run after start", err))
	err = nil
	cs, _, cerr := runtimeContainers(root)
	known := false
	for _, c := range cs {
		known = known || c.ID == st.ID
	}
	if !known && !hasPoststart(st.Bundle) {
		err = fmt.Errorf("gocell-runtime has no container %s in %s, and %s has no poststart hook: "+
			"run the container of exercise 2 again", st.ID, root, filepath.Join(st.Bundle, "config.json"))
		if cerr != nil {
			err = cerr
		}
	}
	return append(out, verdict(fmt.Sprintf("its id, %s, is a container gocell-runtime runs, or ran from a bundle with that hook", st.ID), err))
}

// hasPoststart tells whether the bundle's config.json has a poststart
// hook.
func hasPoststart(bundle string) bool {
	if bundle == "" {
		return false
	}
	data, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		return false
	}
	var s specs.Spec
	return json.Unmarshal(data, &s) == nil && s.Hooks != nil && len(s.Hooks.Poststart) > 0
}

// configCPUs is linux.resources.cpu.cpus of a container's config; "" if
// none.
func configCPUs(c *rtContainer) string {
	s := c.Spec
	if s == nil || s.Linux == nil || s.Linux.Resources == nil || s.Linux.Resources.CPU == nil {
		return ""
	}
	return strings.TrimSpace(s.Linux.Resources.CPU.Cpus)
}

// parseCPUList reads a CPU list such as "0-2,5" (cpuset(7), "List
// format") as the set of its CPUs.
func parseCPUList(list string) (map[int]bool, error) {
	set := map[int]bool{}
	for _, part := range strings.Split(strings.TrimSpace(list), ",") {
		if part == "" {
			continue
		}
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			return nil, fmt.Errorf("CPU list %q: %v", list, err)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a {
				return nil, fmt.Errorf("CPU list %q: bad range %q", list, part)
			}
		}
		for i := a; i <= b; i++ {
			set[i] = true
		}
	}
	return set, nil
}

// sameCPUs tells whether two CPU lists are the same set.
func sameCPUs(a, b string) (bool, error) {
	x, err := parseCPUList(a)
	if err != nil {
		return false, err
	}
	y, err := parseCPUList(b)
	if err != nil {
		return false, err
	}
	if len(x) != len(y) {
		return false, nil
	}
	for c := range x {
		if !y[c] {
			return false, nil
		}
	}
	return true, nil
}

// cpusetDir is the directory of pid's cgroup of the cpuset controller:
// /proc/PID/cgroup gives its path, this process's mountinfo where the
// tree is mounted (a v1 cpuset tree, or else the v2 one).
func cpusetDir(pid int) (string, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return "", err
	}
	info, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return "", err
	}
	var v1, v2 string
	for _, line := range strings.Split(string(info), "\n") {
		before, after, ok := strings.Cut(line, " - ")
		f, g := strings.Fields(before), strings.Fields(after)
		if !ok || len(f) < 5 || len(g) < 3 {
			continue
		}
		switch {
		case g[0] == "cgroup" && hasWord(g[2], "cpuset"):
			v1 = f[4]
		case g[0] == "cgroup2" && v2 == "":
			v2 = f[4]
		}
	}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		f := strings.SplitN(line, ":", 3)
		if len(f) != 3 {
			continue
		}
		if v1 != "" && hasWord(f[1], "cpuset") {
			return filepath.Join(v1, f[2]), nil
		}
		if v1 == "" && v2 != "" && f[0] == "0" && f[1] == "" {
			return filepath.Join(v2, f[2]), nil
		}
	}
	return "", fmt.Errorf("pid %d is in no cgroup of the cpuset controller (/proc/%d/cgroup)", pid, pid)
}

func hasWord(list, word string) bool {
	for _, w := range strings.Split(list, ",") {
		if w == word {
			return true
		}
	}
	return false
}

// checkCPUs is exercise 3 of chapter 10: a refused create (huge page
// limits) left nothing in the runtime's root, and a created or running
// container with linux.resources.cpu.cpus is pinned to those CPUs, by a
// cpuset: Cpus_allowed_list of its process, and its cgroup's
// cpuset.cpus.
func checkCPUs(root string) []result {
	first := "a container of gocell-runtime is created or running, with linux.resources.cpu.cpus in its config"
	cs, left, err := runtimeContainers(root)
	if err != nil {
		return []result{verdict(first, err)}
	}
	var leftErr error
	if len(left) > 0 {
		leftErr = fmt.Errorf("%s has no state.json: a failed create left it (a bug of gocell-runtime); "+
			"remove it: sudo rm -r %s", strings.Join(left, ", "), strings.Join(left, " "))
	}
	leftovers := verdict(fmt.Sprintf("a refused create (hugepageLimits) leaves nothing in %s: no directory without its state", root), leftErr)
	sort.SliceStable(cs, func(i, j int) bool { return configCPUs(cs[i]) != "" && configCPUs(cs[j]) == "" })
	how := "put \"cpu\": {\"cpus\": \"0\"} under linux.resources in config.json, and: sudo gocell-runtime create demo"
	c, err := pick(root, cs, []specs.ContainerState{specs.StateCreated, specs.StateRunning},
		func(c *rtContainer) bool { return configCPUs(c) != "" }, how)
	if err == nil && configCPUs(c) == "" {
		err = fmt.Errorf("the config of %s has no linux.resources.cpu.cpus: delete it, %s", c.ID, how)
	}
	if err != nil {
		return []result{verdict(first, err), leftovers}
	}
	want := configCPUs(c)
	out := []result{verdict(first, nil), leftovers}
	allowed, err := statusField(c.Pid, "Cpus_allowed_list")
	if err == nil {
		var same bool
		if same, err = sameCPUs(allowed, want); err == nil && !same {
			err = fmt.Errorf("pid %d of %s may run on CPUs %s, but its config says %s", c.Pid, c.ID, allowed, want)
		}
	}
	out = append(out, verdict(fmt.Sprintf("its process may run on CPUs %s only (Cpus_allowed_list in /proc/PID/status)", want), err))
	dir, err := cpusetDir(c.Pid)
	if err == nil {
		var data []byte
		if data, err = os.ReadFile(filepath.Join(dir, "cpuset.cpus")); err == nil {
			var same bool
			got := strings.TrimSpace(string(data))
			if same, err = sameCPUs(got, want); err == nil && !same {
				err = fmt.Errorf("%s/cpuset.cpus holds %q, but the config of %s says %s", dir, got, c.ID, want)
			}
		}
	}
	return append(out, verdict("by a cpuset: its cgroup's cpuset.cpus is that set", err))
}

package container

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/gocell/gocell/final/internal/cgroups"
)

// Usage is what a container uses, at one moment, as docker stats shows
// it: from its cgroup's files, and its network namespace's counters.
type Usage struct {
	State *State
	// When the counters were read.
	At time.Time
	// CPUUsec is the CPU time used so far, in microseconds.
	CPUUsec int64
	// MemoryBytes is the memory in use; MemoryLimit its limit, or the
	// host's memory when it has none.
	MemoryBytes, MemoryLimit int64
	// Pids counts its processes and threads.
	Pids int64
	// RxBytes and TxBytes are what its interfaces but lo received and
	// sent: /proc/PID/net/dev of its process, in its network namespace.
	RxBytes, TxBytes int64
}

// Usage reads a running container's counters.
func (s *Store) Usage(ref string) (*Usage, error) {
	st, err := s.Get(ref)
	if err != nil {
		return nil, err
	}
	if st.Status != Running && st.Status != Paused {
		return nil, fmt.Errorf("%w: %s is %s", ErrNotRunning, st.Name, st.Status)
	}
	stats, err := cgroups.Load(st.Cgroup).Stats()
	if err != nil {
		return nil, fmt.Errorf("stats %s: %w", st.Name, err)
	}
	u := &Usage{State: st, At: time.Now(), CPUUsec: stats.CPUUsageUsec,
		MemoryBytes: stats.MemoryCurrent, MemoryLimit: stats.MemoryMax, Pids: stats.PidsCurrent}
	if u.MemoryLimit == 0 {
		u.MemoryLimit = hostMemory()
	}
	u.RxBytes, u.TxBytes = netBytes(st.Pid)
	return u, nil
}

// CPUPercent is the CPU used between two readings, in percent of one
// CPU (200 is two CPUs busy), as docker stats counts it.
func CPUPercent(before, after *Usage) float64 {
	wall := after.At.Sub(before.At).Microseconds()
	if wall <= 0 {
		return 0
	}
	return float64(after.CPUUsec-before.CPUUsec) * 100 / float64(wall)
}

// hostMemory is MemTotal of /proc/meminfo, in bytes. proc(5)
func hostMemory() int64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) >= 2 && f[0] == "MemTotal:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

// netBytes sums the received and sent bytes of the interfaces in pid's
// network namespace, lo left out. /proc/PID/net/dev, proc(5)
func netBytes(pid int) (rx, tx int64) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/dev", pid))
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		name, counters, ok := strings.Cut(line, ":")
		if !ok || strings.TrimSpace(name) == "lo" {
			continue
		}
		f := strings.Fields(counters)
		if len(f) < 9 {
			continue
		}
		r, _ := strconv.ParseInt(f[0], 10, 64)
		t, _ := strconv.ParseInt(f[8], 10, 64)
		rx, tx = rx+r, tx+t
	}
	return rx, tx
}

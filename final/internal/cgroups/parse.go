package cgroups

import (
	"fmt"
	"math"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
)

// ParseSize reads a memory size such as 1048576, 512k, 64M or 1G: a whole
// number above zero, and a unit K, M, G or T in either case, powers of
// 1024 as Docker and the kernel's own memparse() use them. A final B or
// iB changes nothing: 64M, 64MB and 64MiB are the same, 100b is 100.
func ParseSize(s string) (int64, error) {
	bad := fmt.Errorf("invalid size %q: write a whole number of bytes "+
		"above 0, optionally with K, M, G or T, such as 64M", s)
	rest := strings.ToLower(strings.TrimSpace(s))
	rest, iB := strings.CutSuffix(rest, "ib")
	if !iB {
		rest = strings.TrimSuffix(rest, "b")
	}
	mult := int64(1)
	if n := len(rest); n > 0 {
		if i := strings.IndexByte("kmgt", rest[n-1]); i >= 0 {
			mult = 1 << (10 * (i + 1))
			rest = rest[:n-1]
		} else if iB {
			return 0, bad // "iB" needs a unit before it
		}
	}
	if rest == "" || strings.Trim(rest, "0123456789") != "" {
		return 0, bad
	}
	n, err := strconv.ParseInt(rest, 10, 64)
	if err != nil || n <= 0 || n > math.MaxInt64/mult {
		return 0, bad
	}
	return n * mult, nil
}

// ParseCPUs reads a CPU limit such as 0.5 or 2: a number of CPUs, at
// least 0.01 (the kernel's smallest quota, 1 ms per 100 ms period) and at
// most the number of CPUs this machine has.
func ParseCPUs(s string) (float64, error) {
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	n := runtime.NumCPU()
	if err != nil || math.IsNaN(f) || f <= 0 ||
		math.Round(f*cpuPeriod) < minCPUQuota || f > float64(n) {
		return 0, fmt.Errorf("invalid CPU limit %q: write a number of "+
			"CPUs between 0.01 and %d, such as 0.5", s, n)
	}
	return f, nil
}

// ParseList reads a list of CPUs or memory nodes in the kernel's format,
// numbers and ranges joined by commas, such as 0-3,6, and returns the
// numbers in it, each once, in increasing order. cpuset(7) "FORMATS"
func ParseList(s string) ([]int, error) {
	s = strings.TrimSpace(s)
	if !cpuList.MatchString(s) {
		return nil, fmt.Errorf("%q is not a list like 0-3 or 0,2", s)
	}
	seen := map[int]bool{}
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err1 := strconv.Atoi(lo)
		b, err2 := a, error(nil)
		if isRange {
			b, err2 = strconv.Atoi(hi)
		}
		// No machine has more than a few thousand: the bound keeps a
		// typo such as 0-99999999 from filling memory.
		if err1 != nil || err2 != nil || b < a || b >= 1<<16 {
			return nil, fmt.Errorf("%q: %q is not a range from low to high", s, part)
		}
		for n := a; n <= b; n++ {
			seen[n] = true
		}
	}
	var out []int
	for n := range seen {
		out = append(out, n)
	}
	slices.Sort(out)
	return out, nil
}

// The files that list the CPUs and the memory nodes that are online.
// A kernel without NUMA has no node directory: one node, 0, then.
// See Documentation/ABI/testing/sysfs-devices-system-cpu.
var (
	onlineCPUs  = "/sys/devices/system/cpu/online"
	onlineNodes = "/sys/devices/system/node/online"
)

// CheckCPUSet refuses a list of CPUs (what "cpus") or memory nodes
// ("mems") that is not in the kernel's format or names one the machine
// does not have online, with a message that says which it has: the
// kernel's own answer, EINVAL from a write to cpuset.cpus, says neither.
func CheckCPUSet(what, list string) error {
	file, noun := onlineCPUs, "CPU"
	if what == "mems" {
		file, noun = onlineNodes, "memory node"
	}
	want, err := ParseList(list)
	if err != nil {
		return fmt.Errorf("invalid %s list: %w", noun, err)
	}
	online := "0"
	if data, err := os.ReadFile(file); err == nil {
		online = strings.TrimSpace(string(data))
	} else if what != "mems" {
		return err
	}
	have, err := ParseList(online)
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	for _, n := range want {
		if !slices.Contains(have, n) {
			return fmt.Errorf("%s %d is not online on this machine, which has %s %s",
				noun, n, noun+"s", online)
		}
	}
	return nil
}

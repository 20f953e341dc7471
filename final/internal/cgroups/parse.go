package cgroups

import (
	"fmt"
	"math"
	"runtime"
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

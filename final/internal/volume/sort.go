package volume

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"
)

// SortMounts checks the destinations and orders them parents first, so
// that -v a:/x/y -v b:/x still shows a at /x/y: the runtime mounts them
// in this order.
func SortMounts(mounts []Mount) ([]Mount, error) {
	seen := map[string]bool{}
	sorted := make([]Mount, 0, len(mounts))
	for _, m := range mounts {
		dst := filepath.Clean(m.Destination)
		if !filepath.IsAbs(dst) || dst == "/" {
			return nil, fmt.Errorf("%w: mount %s: destination must be an "+
				"absolute path other than /", ErrInvalid, m)
		}
		if seen[dst] {
			return nil, fmt.Errorf("%w: two mounts on %s", ErrInvalid, dst)
		}
		seen[dst] = true
		m.Destination = dst
		sorted = append(sorted, m)
	}
	depth := func(p string) int { return strings.Count(p, "/") }
	sort.SliceStable(sorted, func(i, j int) bool {
		return depth(sorted[i].Destination) < depth(sorted[j].Destination)
	})
	return sorted, nil
}

package container

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/gocell/gocell/final/internal/names"
	"github.com/gocell/gocell/final/internal/volume"
)

// seedVolumes copies into each named volume that is still empty what the
// image has at its destination (volume.SeedIn), as Docker does. It runs
// right after the overlay is mounted, before the runtime mounts /proc,
// /sys and /dev: a destination that leads there through a symlink of the
// image then finds the image's own empty directories, never the
// kernel's files. Seeding
// writes into a volume that other containers may mount: one seed at a
// time, under the volume's seed.lock, and none into a volume a running
// container holds, since it could be changing it as we copy (SeedIn
// stays inside the volume even then, but the copy would be a mess);
// such a volume is mounted as it is. The locks are held until the
// caller calls the function returned, once the runtime has made its
// mounts.
func (s *Store) seedVolumes(st *State, merged string) (func(), error) {
	var unlocks []func()
	unlockAll := func() {
		for _, u := range unlocks {
			u()
		}
	}
	vols, err := s.Volumes()
	if err != nil {
		return unlockAll, err
	}
	for _, m := range st.Spec.Mounts {
		if !m.Named {
			continue
		}
		v, err := vols.Get(m.Source)
		if err != nil {
			return unlockAll, err
		}
		unlock, err := lockFile(filepath.Join(filepath.Dir(v.Dir), "seed.lock"))
		if err != nil {
			return unlockAll, err
		}
		unlocks = append(unlocks, unlock)
		if s.volumeInUse(st.ID, m.Source) {
			continue
		}
		if err := volume.SeedIn(v.Dir, merged, m.Destination); err != nil {
			return unlockAll, fmt.Errorf("seed volume %s: %w", m.Source, err)
		}
	}
	return unlockAll, nil
}

// volumeInUse tells whether a container other than self is running (or
// paused) with the named volume name.
func (s *Store) volumeInUse(self, name string) bool {
	entries, _ := os.ReadDir(filepath.Join(s.Root, "containers"))
	for _, e := range entries {
		if e.Name() == self || !names.HexID(e.Name(), 64, 64) {
			continue
		}
		other, err := s.read(e.Name())
		if err != nil || (other.Status != Running && other.Status != Paused) ||
			!alive(other.Pid, other.PidStart) {
			continue
		}
		for _, m := range other.Spec.Mounts {
			if m.Named && m.Source == name {
				return true
			}
		}
	}
	return false
}

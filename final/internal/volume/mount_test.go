package volume

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gocell/gocell/internal/celltest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// dirWith makes a directory holding one file, in.txt, with data.
func dirWith(t *testing.T, data string) string {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "in.txt"), []byte(data), 0o644))
	return dir
}

// fakeRoot makes a container root (standing in for the merged overlay)
// with the given directories.
func fakeRoot(t *testing.T, dirs ...string) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), "merged")
	require.NoError(t, os.Mkdir(root, 0o755))
	for _, d := range dirs {
		require.NoError(t, os.MkdirAll(filepath.Join(root, d), 0o755))
	}
	return root
}

// points lists the mount points of ms, relative to root.
func points(root string, ms []celltest.Mount) []string {
	var ps []string
	for _, m := range ms {
		ps = append(ps, "/"+strings.TrimPrefix(strings.TrimPrefix(m.MountPoint, root), "/"))
	}
	return ps
}

// hasOption tells whether m has the per-mount option o ("ro").
func hasOption(m celltest.Mount, o string) bool {
	return slices.Contains(strings.Split(m.Options, ","), o)
}

// privMountTest skips the test unless privileged, and checks when it
// ends that the host's mount table is as it was. It returns the host's
// mount points, for newMounts.
func privMountTest(t *testing.T) map[string]bool {
	t.Helper()
	celltest.RequirePriv(t)
	host := celltest.Snapshot(t)
	t.Cleanup(func() { celltest.AssertMountsUnchanged(t, host) })
	return mountPoints(t)
}

func TestMountAll(t *testing.T) {
	before := privMountTest(t)
	rw := dirWith(t, "read-write")
	ro := dirWith(t, "read-only")
	conf := filepath.Join(t.TempDir(), "app.conf")
	require.NoError(t, os.WriteFile(conf, []byte("key=value"), 0o644))
	root := fakeRoot(t, "etc")
	at := func(p string) string { return filepath.Join(root, p) }

	res := runChild(t, job{Root: root, Steps: []step{{
		Mounts: []Mount{
			{Source: ro, Destination: "/ro/deep", ReadOnly: true},
			{Source: rw, Destination: "/data"},
			{Source: conf, Destination: "/etc/app.conf", ReadOnly: true},
		},
		Writes: map[string]string{
			at("data/new.txt"):    "written inside",
			at("ro/deep/new.txt"): "refused",
			at("etc/app.conf"):    "refused",
		},
		Reads: []string{at("data/in.txt"), at("ro/deep/in.txt"), at("etc/app.conf")},
	}}})

	r := res.Steps[0]
	require.Empty(t, r.Err)
	assert.Equal(t, map[string]string{
		at("data/new.txt"):    "",
		at("ro/deep/new.txt"): "EROFS",
		at("etc/app.conf"):    "EROFS",
	}, r.Writes)
	assert.Equal(t, map[string]string{
		at("data/in.txt"):    "read-write",
		at("ro/deep/in.txt"): "read-only",
		at("etc/app.conf"):   "key=value",
	}, r.Reads)

	// The kernel's view from inside: three mounts, parents first, with
	// the right flags, and nothing anywhere else.
	under, outside := newMounts(t, res, root, before)
	assert.Empty(t, outside)
	assert.Equal(t, []string{"/data", "/ro/deep", "/etc/app.conf"}, points(root, under))
	require.Len(t, under, 3)
	assert.True(t, hasOption(under[0], "rw"), under[0].Options)
	assert.True(t, hasOption(under[1], "ro"), under[1].Options)
	assert.True(t, hasOption(under[2], "ro"), under[2].Options)

	// From the host: the write went to the source, the read-only
	// source is unchanged, the mount points were made in the root, and
	// no mount is left.
	b, err := os.ReadFile(filepath.Join(rw, "new.txt"))
	require.NoError(t, err)
	assert.Equal(t, "written inside", string(b))
	assert.NoFileExists(t, filepath.Join(ro, "new.txt"))
	assert.DirExists(t, at("ro/deep"))
	assert.DirExists(t, at("data"))
	assert.NoFileExists(t, at("data/in.txt"), "the mount was in the child's namespace only")
	fi, err := os.Stat(at("etc/app.conf"))
	require.NoError(t, err)
	assert.True(t, fi.Mode().IsRegular())
	assert.Zero(t, fi.Size())
}

func TestMountAllRefuses(t *testing.T) {
	before := privMountTest(t)
	dir := dirWith(t, "x")
	file := filepath.Join(dir, "in.txt")
	root := fakeRoot(t, "adir")
	require.NoError(t, os.WriteFile(filepath.Join(root, "afile"), nil, 0o644))

	cases := []struct {
		mount Mount
		want  string
	}{
		{Mount{Source: filepath.Join(dir, "missing"), Destination: "/m"}, "no such file"},
		{Mount{Source: file, Destination: "/adir"}, "is a directory"},
		{Mount{Source: dir, Destination: "/afile"}, "not a directory"},
		{Mount{Source: dir, Destination: "/afile/below"}, "not a directory"},
		{Mount{Source: dir, Destination: "relative"}, "absolute"},
	}
	var steps []step
	for _, c := range cases {
		steps = append(steps, step{Mounts: []Mount{c.mount}})
	}
	res := runChild(t, job{Root: root, Steps: steps})
	for i, c := range cases {
		assert.Contains(t, res.Steps[i].Err, c.want, c.mount.String())
	}
	under, outside := newMounts(t, res, root, before)
	assert.Empty(t, under)
	assert.Empty(t, outside)
	assert.NoFileExists(t, filepath.Join(root, "m"))
}

// TestMountAllSymlinkAttack: an image whose mount points are symlinks
// out of the root (the CVE-2021-30465 class) gets its volumes mounted
// inside the root, or refused, never on the host's paths.
func TestMountAllSymlinkAttack(t *testing.T) {
	before := privMountTest(t)
	root := fakeRoot(t, "etc", "usr", "var")
	at := func(p string) string { return filepath.Join(root, p) }
	require.NoError(t, os.WriteFile(at("etc/image-file"), []byte("image"), 0o644))
	up := strings.Repeat("../", strings.Count(root, "/")+2) // past "/"

	// A host directory the image names, and one that does not exist.
	hostDir := t.TempDir()
	escape := filepath.Join(t.TempDir(), "escape")
	links := map[string]string{
		"data":  "/etc",                                // absolute
		"data2": up + "usr",                            // relative, climbing out
		"data3": "../../../..",                         // the root itself
		"data4": escape,                                // dangling, to the host
		"data5": "/var",                                // in the middle of a path
		"data6": hostDir,                               // an existing host dir
		"data7": up + strings.TrimPrefix(hostDir, "/"), // the same, relative
	}
	for name, target := range links {
		require.NoError(t, os.Symlink(target, at(name)))
	}
	a, b, c := dirWith(t, "a"), dirWith(t, "b"), dirWith(t, "c")
	// The child reads and writes by host paths, before any pivot_root,
	// so it must name the real directories: through root/data it would
	// follow the link to the host's /etc itself.
	evil := fmt.Sprintf("gocell-volume-test-%d", os.Getpid())

	res := runChild(t, job{Root: root, Steps: []step{
		{Mounts: []Mount{{Source: a, Destination: "/data"}},
			Writes: map[string]string{at("etc/" + evil): "a"},
			Reads:  []string{at("etc/in.txt"), at("etc/image-file")}},
		{Mounts: []Mount{{Source: b, Destination: "/data2"}},
			Writes: map[string]string{at("usr/" + evil): "b"},
			Reads:  []string{at("usr/in.txt")}},
		{Mounts: []Mount{{Source: c, Destination: "/data3"}}},
		{Mounts: []Mount{{Source: c, Destination: "/data4"}}},
		{Mounts: []Mount{{Source: c, Destination: "/data5/sub/deeper"}},
			Reads: []string{at("var/sub/deeper/in.txt")}},
		{Mounts: []Mount{{Source: c, Destination: "/data6"}}},
		{Mounts: []Mount{{Source: c, Destination: "/data7/x"}}},
	}})

	// /data -> /etc: on the image's /etc, which the volume now covers.
	s := res.Steps
	assert.Empty(t, s[0].Err)
	assert.Equal(t, map[string]string{at("etc/" + evil): ""}, s[0].Writes)
	assert.Equal(t, map[string]string{at("etc/in.txt"): "a",
		at("etc/image-file"): "error: ENOENT"}, s[0].Reads)
	// ../../…/usr: stopped at the root, so on the image's /usr.
	assert.Empty(t, s[1].Err)
	assert.Equal(t, map[string]string{at("usr/in.txt"): "b"}, s[1].Reads)
	// ../../../..: the root itself, refused like -v /h:/.
	assert.True(t, s[2].Invalid, s[2].Err)
	assert.Contains(t, s[2].Err, "resolves to the container's root")
	// A dangling link is refused, not followed to make its target.
	assert.Contains(t, s[3].Err, "dangling symlink")
	// A link in the middle: directories made inside the root.
	assert.Empty(t, s[4].Err)
	assert.Equal(t, map[string]string{at("var/sub/deeper/in.txt"): "c"}, s[4].Reads)
	// An existing host directory, absolute or relative: not in the root.
	assert.Contains(t, s[5].Err, "dangling symlink")
	assert.Contains(t, s[6].Err, "dangling symlink")

	// Inside the child, the only mounts are in the root.
	under, outside := newMounts(t, res, root, before)
	assert.Empty(t, outside)
	assert.Equal(t, []string{"/etc", "/usr", "/var/sub/deeper"}, points(root, under))

	// On the host: writes went to the volumes' sources, nothing to
	// /etc or /usr, nothing was created or mounted where links pointed.
	assert.FileExists(t, filepath.Join(a, evil))
	assert.FileExists(t, filepath.Join(b, evil))
	assert.NoFileExists(t, filepath.Join("/etc", evil))
	assert.NoFileExists(t, filepath.Join("/usr", evil))
	assert.NoDirExists(t, escape)
	entries, err := os.ReadDir(hostDir)
	require.NoError(t, err)
	assert.Empty(t, entries)
	assert.NoDirExists(t, at(hostDir))
	assert.NoDirExists(t, at(escape))
}

// TestVolumeOutlivesContainer: a named volume, seeded from the first
// container's image and written in it, is read by the next.
func TestVolumeOutlivesContainer(t *testing.T) {
	privMountTest(t)
	store := t.TempDir()
	s, err := Open(store)
	require.NoError(t, err)
	v, created, err := s.Create("data")
	require.NoError(t, err)
	require.True(t, created)

	first := fakeRoot(t, "var/lib/db")
	require.NoError(t, os.WriteFile(filepath.Join(first, "var/lib/db/preset"), []byte("from the image"), 0o600))
	res := runChild(t, job{Root: first, Store: store, Steps: []step{{
		Seed:   true,
		Mounts: []Mount{{Source: "data", Destination: "/var/lib/db", Named: true}},
		Writes: map[string]string{filepath.Join(first, "var/lib/db/hello"): "from the first container"},
		Reads:  []string{filepath.Join(first, "var/lib/db/preset")},
	}}})
	require.Empty(t, res.Steps[0].Err)
	assert.Equal(t, "", res.Steps[0].Writes[filepath.Join(first, "var/lib/db/hello")])
	assert.Equal(t, "from the image", res.Steps[0].Reads[filepath.Join(first, "var/lib/db/preset")])

	second := fakeRoot(t)
	at := func(p string) string { return filepath.Join(second, "srv/x", p) }
	res = runChild(t, job{Root: second, Store: store, Steps: []step{{
		Mounts: []Mount{{Source: "data", Destination: "/srv/x", Named: true, ReadOnly: true}},
		Writes: map[string]string{at("more"): "refused"},
		Reads:  []string{at("hello"), at("preset")},
	}}})
	require.Empty(t, res.Steps[0].Err)
	assert.Equal(t, map[string]string{at("more"): "EROFS"}, res.Steps[0].Writes)
	assert.Equal(t, map[string]string{at("hello"): "from the first container",
		at("preset"): "from the image"}, res.Steps[0].Reads)

	// The data is in the volume on the host, and goes with it.
	assert.FileExists(t, filepath.Join(v.Dir, "hello"))
	require.NoError(t, s.Remove("data", false))
	assert.NoDirExists(t, v.Dir)
}

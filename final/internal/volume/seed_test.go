package volume

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/gocell/gocell/internal/celltest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// makeTree builds a source directory with every kind of entry Seed must
// copy faithfully, symlinks that point out of it among them.
func makeTree(t *testing.T) string {
	t.Helper()
	src := filepath.Join(t.TempDir(), "src")
	files := []struct {
		path string
		mode os.FileMode
		data string
	}{
		{"file.txt", 0o644, "hello"},
		{"run.sh", 0o755, "#!/bin/sh\n"},
		{"secret", 0o600, "s3cret"},
		{"sub/deep/f", 0o640, "deep"},
		{"hard1", 0o644, "linked"},
	}
	for _, f := range files {
		p := filepath.Join(src, f.path)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(f.data), f.mode))
		require.NoError(t, os.Chmod(p, f.mode))
	}
	require.NoError(t, os.Mkdir(filepath.Join(src, "empty"), 0o700))
	require.NoError(t, os.Chmod(filepath.Join(src, "sub"), 0o750))
	require.NoError(t, os.Chmod(filepath.Join(src, "sub/deep"), os.ModeSetgid|0o755))
	require.NoError(t, os.Link(filepath.Join(src, "hard1"), filepath.Join(src, "sub/hard2")))
	links := map[string]string{
		"abs":      "/etc/passwd",
		"linkdir":  "/etc",
		"rel":      "../../../../outside",
		"dangling": "nowhere",
		"sub/up":   "../file.txt",
	}
	for name, target := range links {
		require.NoError(t, os.Symlink(target, filepath.Join(src, name)))
	}
	require.NoError(t, unix.Mkfifo(filepath.Join(src, "fifo"), 0o620))
	old := time.Date(2001, 2, 3, 4, 5, 6, 7000, time.UTC)
	require.NoError(t, os.Chtimes(filepath.Join(src, "file.txt"), old, old))
	require.NoError(t, os.Chtimes(filepath.Join(src, "sub/deep"), old, old))
	return src
}

func inodeOf(t *testing.T, path string) uint64 {
	t.Helper()
	fi, err := os.Lstat(path)
	require.NoError(t, err)
	return fi.Sys().(*syscall.Stat_t).Ino
}

func TestSeed(t *testing.T) {
	src := makeTree(t)
	want := celltest.TreeSum(t, src)
	vol := filepath.Join(t.TempDir(), "_data")
	require.NoError(t, os.Mkdir(vol, 0o755))

	require.NoError(t, Seed(vol, src))

	// Same entries, types, modes, owners, contents and link targets,
	// the volume's own directory included.
	assert.Equal(t, want, celltest.TreeSum(t, vol))
	for _, name := range []string{"abs", "linkdir", "rel", "dangling", "sub/up"} {
		fi, err := os.Lstat(filepath.Join(vol, name))
		require.NoError(t, err)
		assert.Equal(t, os.ModeSymlink, fi.Mode().Type(), name)
	}
	assert.Equal(t, inodeOf(t, filepath.Join(vol, "hard1")),
		inodeOf(t, filepath.Join(vol, "sub/hard2")), "hard link kept")
	for _, name := range []string{"file.txt", "sub/deep"} {
		a, err := os.Stat(filepath.Join(src, name))
		require.NoError(t, err)
		b, err := os.Stat(filepath.Join(vol, name))
		require.NoError(t, err)
		assert.Equal(t, a.ModTime(), b.ModTime(), name)
	}

	// A volume that has data is never seeded again.
	other := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(other, "new"), nil, 0o644))
	require.NoError(t, Seed(vol, other))
	assert.Equal(t, want, celltest.TreeSum(t, vol))
}

func TestSeedNothingToCopy(t *testing.T) {
	dir := t.TempDir()
	vol := filepath.Join(dir, "_data")
	require.NoError(t, os.Mkdir(vol, 0o755))
	file := filepath.Join(dir, "file")
	require.NoError(t, os.WriteFile(file, []byte("x"), 0o644))
	link := filepath.Join(dir, "link")
	require.NoError(t, os.Symlink("/etc", link))

	for _, src := range []string{filepath.Join(dir, "missing"), file, link} {
		require.NoError(t, Seed(vol, src), src)
		entries, err := os.ReadDir(vol)
		require.NoError(t, err)
		assert.Empty(t, entries, src)
	}
}

// TestSeedIn: the seed's source is resolved inside the container root,
// so an image's symlink leads to the image's /etc, not the host's.
func TestSeedIn(t *testing.T) {
	root := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(root, "etc"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(root, "etc/image-file"), []byte("img"), 0o644))
	require.NoError(t, os.MkdirAll(filepath.Join(root, "srv/www"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(root, "srv/www/index.html"), []byte("hi"), 0o644))
	require.NoError(t, os.Symlink("/etc", filepath.Join(root, "data")))
	require.NoError(t, os.Symlink("../../../../../../../../etc", filepath.Join(root, "data2")))
	require.NoError(t, os.Symlink("/srv", filepath.Join(root, "web")))

	cases := map[string][]string{
		"/data":           {"image-file"},
		"/data2":          {"image-file"},
		"/web/www":        {"index.html"},
		"/missing":        nil,
		"/etc/image-file": nil, // a file: nothing to seed
	}
	for dest, want := range cases {
		vol := t.TempDir()
		require.NoError(t, SeedIn(vol, root, dest), dest)
		entries, err := os.ReadDir(vol)
		require.NoError(t, err)
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		assert.Equal(t, want, names, dest)
	}
}

// TestSeedOwners needs root: it gives entries other owners, set-user-ID
// bits (which chown(2) would clear if done in the wrong order) and a
// device node, which is not copied.
func TestSeedOwners(t *testing.T) {
	celltest.RequirePriv(t)
	src := makeTree(t)
	require.NoError(t, os.Chmod(filepath.Join(src, "run.sh"), os.ModeSetuid|0o755))
	owners := map[string][2]int{
		"":         {10, 20},
		"file.txt": {1234, 5678},
		"run.sh":   {1000, 1000},
		"sub":      {42, 43},
		"abs":      {7, 8},
		"fifo":     {9, 9},
	}
	for name, o := range owners {
		require.NoError(t, os.Lchown(filepath.Join(src, name), o[0], o[1]))
	}
	require.NoError(t, os.Chmod(filepath.Join(src, "run.sh"), os.ModeSetuid|0o755))
	want := celltest.TreeSum(t, src)
	dev := filepath.Join(src, "null")
	require.NoError(t, unix.Mknod(dev, unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))

	vol := filepath.Join(t.TempDir(), "_data")
	require.NoError(t, os.Mkdir(vol, 0o755))
	require.NoError(t, Seed(vol, src))
	assert.Equal(t, want, celltest.TreeSum(t, vol))
	assert.NoFileExists(t, filepath.Join(vol, "null"), "device nodes are not copied")
	fi, err := os.Stat(filepath.Join(vol, "run.sh"))
	require.NoError(t, err)
	assert.Equal(t, os.ModeSetuid, fi.Mode()&os.ModeSetuid)
}

// TestSeedSwapRace plays the neighbour: a container that shares the
// volume and, while gocell seeds it, swaps what gocell just made for a
// symlink out of the volume (to the host's files, from where the seed
// runs). Each swap below made the old path-based copy write outside: a
// hard link to a host file, chmod 4755 onto a host file, files in a host
// directory. Now every write goes through the descriptor of what was
// made, so each swap leads nowhere.
func TestSeedSwapRace(t *testing.T) {
	celltest.RequirePriv(t) // chown, and linkat(2) AT_EMPTY_PATH
	src := filepath.Join(t.TempDir(), "src")
	require.NoError(t, os.MkdirAll(filepath.Join(src, "a"), 0o755))
	require.NoError(t, os.MkdirAll(filepath.Join(src, "z"), 0o755))
	require.NoError(t, os.MkdirAll(filepath.Join(src, "d"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(src, "a/hard1"), []byte("image"), 0o644))
	require.NoError(t, os.Link(filepath.Join(src, "a/hard1"), filepath.Join(src, "z/hard2")))
	require.NoError(t, os.WriteFile(filepath.Join(src, "suid"), []byte("#!/bin/sh\n"), 0o755))
	require.NoError(t, os.Chmod(filepath.Join(src, "suid"), os.ModeSetuid|0o755))
	require.NoError(t, os.WriteFile(filepath.Join(src, "d/f"), []byte("image"), 0o644))

	// The host's files the neighbour points at.
	host := t.TempDir()
	secret := filepath.Join(host, "hard1")
	require.NoError(t, os.WriteFile(secret, []byte("host secret"), 0o600))
	hostBin := filepath.Join(host, "suid")
	require.NoError(t, os.WriteFile(hostBin, []byte("host binary"), 0o755))
	hostDir := filepath.Join(host, "dir")
	require.NoError(t, os.Mkdir(hostDir, 0o755))
	before := celltest.TreeSum(t, host)
	defer func() { seedHook = nil }()

	for _, attack := range []string{"hard1", "suid", "d"} {
		t.Run(attack, func(t *testing.T) {
			vol := filepath.Join(t.TempDir(), "_data")
			require.NoError(t, os.Mkdir(vol, 0o755))
			first := "" // the name of the hard link copied first
			seedHook = func(dirfd int, name string) {
				if attack == "hard1" && (name == "hard1" || name == "hard2") && first == "" {
					// The copy's directory goes, and a symlink to
					// the host's directory, which has a file of
					// that name, takes its place.
					first = name
					dir := map[string]string{"hard1": "a", "hard2": "z"}[name]
					require.NoError(t, os.Rename(filepath.Join(vol, dir), filepath.Join(vol, "moved")))
					require.NoError(t, os.Symlink(host, filepath.Join(vol, dir)))
					require.NoError(t, os.WriteFile(filepath.Join(host, "hard2"), []byte("host"), 0o600))
					return
				}
				if name != attack {
					return
				}
				switch name {
				case "suid":
					require.NoError(t, unix.Renameat(dirfd, name, dirfd, name+".moved"))
					require.NoError(t, unix.Symlinkat(hostBin, dirfd, name))
				case "d":
					require.NoError(t, unix.Renameat(dirfd, name, dirfd, name+".moved"))
					require.NoError(t, unix.Symlinkat(hostDir, dirfd, name))
				}
			}
			err := Seed(vol, src)
			t.Logf("seed: %v", err)
			if attack == "hard1" {
				require.NotEmpty(t, first, "the hook ran")
				defer os.Remove(filepath.Join(host, "hard2"))
			}
			sum := celltest.TreeSum(t, host)
			delete(sum, "hard2")
			assert.Equal(t, before, sum, "nothing outside the volume changed")
			fi, err := os.Stat(hostBin)
			require.NoError(t, err)
			assert.Zero(t, fi.Mode()&os.ModeSetuid, "the host's file is not set-user-ID")
			if attack == "hard1" {
				other := map[string]string{"hard1": "z/hard2", "hard2": "a/hard1"}[first]
				if fi, err := os.Lstat(filepath.Join(vol, other)); err == nil && fi.Mode().IsRegular() {
					assert.Equal(t, inodeOf(t, filepath.Join(vol, "moved", first)),
						inodeOf(t, filepath.Join(vol, other)), "linked to the copy, not the host's file")
				}
			}
		})
	}
}

package cgroups

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseMountInfo(t *testing.T) {
	// From a hybrid host (this project's development machine), with an
	// escaped space added.
	text := `22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
30 22 0:27 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
31 30 0:28 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
32 30 0:29 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 30 0:31 / /sys/fs/cgroup/mem\040ory rw,relatime shared:5 master:2 - cgroup cgroup rw,memory
36 30 0:33 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
38 30 0:35 /docker/x /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
39 30 0:36 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
40 30 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
not a mountinfo line
`
	l := parseMountInfo(text)
	assert.Equal(t, "/sys/fs/cgroup/unified", l.unified)
	assert.Equal(t, mount{"/sys/fs/cgroup/mem ory", "/"}, l.v1["memory"])
	assert.Equal(t, mount{"/sys/fs/cgroup/pids", "/docker/x"}, l.v1["pids"])
	assert.Equal(t, "/sys/fs/cgroup/cpuacct", l.v1["cpuacct"].point)
	assert.Equal(t, "/sys/fs/cgroup/systemd", l.v1["name=systemd"].point)
	assert.NotContains(t, l.v1, "tmpfs")

	// A systemd host on cgroup v2.
	l = parseMountInfo("35 24 0:30 / /sys/fs/cgroup rw,nosuid,nodev,noexec," +
		"relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n")
	assert.Equal(t, "/sys/fs/cgroup", l.unified)
	assert.Empty(t, l.v1)
}

func TestDetectLayouts(t *testing.T) {
	for _, tc := range []struct {
		name    string
		tree    func(t *testing.T) *fakeTree
		version int
	}{
		{"v2", func(t *testing.T) *fakeTree { return fakeV2(t, "") }, 2},
		{"v1", func(t *testing.T) *fakeTree { return fakeV1(t, false) }, 1},
		{"v1 cpu,cpuacct", func(t *testing.T) *fakeTree { return fakeV1(t, true) }, 1},
		{"hybrid", fakeHybrid, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ft := tc.tree(t)
			l, err := detect(ft.opts.MountInfo)
			require.NoError(t, err)
			assert.Equal(t, tc.version, l.version)
		})
	}
}

func TestDetectMissingControllers(t *testing.T) {
	// Nothing mounted at all.
	ft := newFakeTree(t)
	ft.write()
	_, err := New("c1", ft.opts)
	require.ErrorIs(t, err, ErrNoController)
	assert.Contains(t, err.Error(), "no cgroup file system")

	// cgroup v2 without the pids controller.
	ft = newFakeTree(t)
	ft.addV2("unified", "cpu io memory", "")
	_, err = New("c1", ft.opts)
	require.ErrorIs(t, err, ErrNoController)
	assert.Contains(t, err.Error(), "pids")

	// A hybrid host with only an empty cgroup2: nothing to use.
	ft = newFakeTree(t)
	ft.addV2("unified", "", "")
	_, err = New("c1", ft.opts)
	require.ErrorIs(t, err, ErrNoController)

	// cgroup v1 without the freezer tree.
	ft = newFakeTree(t)
	for _, c := range []string{"memory", "pids", "cpu"} {
		ft.addV1(c)
	}
	_, err = New("c1", ft.opts)
	require.ErrorIs(t, err, ErrNoController)
	assert.Contains(t, err.Error(), "freezer")

	// No mountinfo at all: an error naming the file.
	ft.opts.MountInfo = filepath.Join(t.TempDir(), "missing")
	_, err = New("c1", ft.opts)
	require.Error(t, err)
	assert.Contains(t, err.Error(), ft.opts.MountInfo)
}

func TestOwnCgroup(t *testing.T) {
	text := "12:pids:/user.slice\n4:cpu,cpuacct:/a/b\n1:name=systemd:/s\n0::/u\n"
	assert.Equal(t, "/user.slice", ownCgroup(text, "pids"))
	assert.Equal(t, "/a/b", ownCgroup(text, "cpu"))
	assert.Equal(t, "/a/b", ownCgroup(text, "cpuacct"))
	assert.Equal(t, "/", ownCgroup(text, "freezer"))
}

package volume

import (
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func openStore(t *testing.T) (*Store, string) {
	t.Helper()
	root := t.TempDir()
	s, err := Open(root)
	require.NoError(t, err)
	return s, root
}

func TestStoreLifecycle(t *testing.T) {
	s, root := openStore(t)

	vols, err := s.List()
	require.NoError(t, err)
	assert.Empty(t, vols)

	before := time.Now()
	v, created, err := s.Create("db")
	require.NoError(t, err)
	assert.True(t, created)
	assert.Equal(t, "db", v.Name)
	assert.Equal(t, filepath.Join(root, "volumes", "db", "_data"), v.Dir)
	assert.WithinRange(t, v.Created, before.Add(-time.Second), time.Now())
	assert.DirExists(t, v.Dir)
	require.NoError(t, os.WriteFile(filepath.Join(v.Dir, "f"), []byte("x"), 0o644))

	// Idempotent: the same volume, its data untouched.
	again, created, err := s.Create("db")
	require.NoError(t, err)
	assert.False(t, created)
	assert.Equal(t, v.Dir, again.Dir)
	assert.True(t, v.Created.Equal(again.Created))
	assert.FileExists(t, filepath.Join(v.Dir, "f"))

	got, err := s.Get("db")
	require.NoError(t, err)
	assert.Equal(t, v.Dir, got.Dir)
	assert.True(t, v.Created.Equal(got.Created))

	_, _, err = s.Create("cache")
	require.NoError(t, err)
	vols, err = s.List()
	require.NoError(t, err)
	require.Len(t, vols, 2)
	assert.Equal(t, "cache", vols[0].Name)
	assert.Equal(t, "db", vols[1].Name)

	// In use: refused, and nothing is lost.
	err = s.Remove("db", true)
	assert.ErrorIs(t, err, ErrInUse)
	assert.ErrorContains(t, err, "db")
	assert.FileExists(t, filepath.Join(v.Dir, "f"))

	require.NoError(t, s.Remove("db", false))
	assert.NoDirExists(t, filepath.Join(root, "volumes", "db"))
	_, err = s.Get("db")
	assert.ErrorIs(t, err, ErrNotFound)
	assert.ErrorIs(t, s.Remove("db", false), ErrNotFound)

	// Nothing but the remaining volume is left in the store.
	entries, err := os.ReadDir(filepath.Join(root, "volumes"))
	require.NoError(t, err)
	require.Len(t, entries, 1)
	assert.Equal(t, "cache", entries[0].Name())
}

func TestStoreInvalidNames(t *testing.T) {
	s, _ := openStore(t)
	for _, name := range []string{"", "a/b", "..", ".new-x", "-a", "a b"} {
		_, _, err := s.Create(name)
		assert.ErrorIs(t, err, ErrInvalid, name)
		_, err = s.Get(name)
		assert.ErrorIs(t, err, ErrInvalid, name)
		assert.ErrorIs(t, s.Remove(name, false), ErrInvalid, name)
	}
}

func TestStorePrune(t *testing.T) {
	s, _ := openStore(t)
	for _, name := range []string{"a", "b", "c", "d"} {
		_, _, err := s.Create(name)
		require.NoError(t, err)
	}
	removed, err := s.Prune(map[string]bool{"b": true, "d": true, "zz": true})
	require.NoError(t, err)
	assert.Equal(t, []string{"a", "c"}, removed)
	vols, err := s.List()
	require.NoError(t, err)
	require.Len(t, vols, 2)
	assert.Equal(t, "b", vols[0].Name)
	assert.Equal(t, "d", vols[1].Name)

	removed, err = s.Prune(nil)
	require.NoError(t, err)
	assert.Equal(t, []string{"b", "d"}, removed)
}

// TestStoreConcurrentCreate: many creators of one name; exactly one is
// told it created the volume, and all get the same one.
func TestStoreConcurrentCreate(t *testing.T) {
	s, root := openStore(t)
	const n = 16
	var wg sync.WaitGroup
	created := make([]bool, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, created[i], errs[i] = s.Create("shared")
		}()
	}
	wg.Wait()
	count := 0
	for i := range n {
		require.NoError(t, errs[i])
		if created[i] {
			count++
		}
	}
	assert.Equal(t, 1, count)
	entries, err := os.ReadDir(filepath.Join(root, "volumes"))
	require.NoError(t, err)
	require.Len(t, entries, 1, "no temporary directory left behind")
}

func TestResolve(t *testing.T) {
	s, _ := openStore(t)
	v, _, err := s.Create("data")
	require.NoError(t, err)

	got, err := s.Resolve(Mount{Source: "data", Destination: "/d", Named: true})
	require.NoError(t, err)
	assert.Equal(t, v.Dir, got)

	_, err = s.Resolve(Mount{Source: "nope", Destination: "/d", Named: true})
	assert.ErrorIs(t, err, ErrNotFound)

	host := t.TempDir()
	got, err = s.Resolve(Mount{Source: host, Destination: "/d"})
	require.NoError(t, err)
	assert.Equal(t, host, got)

	_, err = s.Resolve(Mount{Source: filepath.Join(host, "missing"), Destination: "/d"})
	assert.ErrorIs(t, err, os.ErrNotExist)
	_, err = s.Resolve(Mount{Source: "rel/path", Destination: "/d"})
	assert.ErrorIs(t, err, ErrInvalid)
}

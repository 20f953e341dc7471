//go:build learnercheck

package main

import (
	"testing"

	"github.com/gocell/gocell/internal/celltest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

func TestMain(m *testing.M) { celltest.Main(m, main) }

func kitDomainname(t *testing.T) string {
	var u unix.Utsname
	require.NoError(t, unix.Uname(&u))
	return unix.ByteSliceToString(u.Domainname[:])
}

// TestDomainname: --domainname sets the NIS domain name of the new UTS
// namespace, read from outside through setns(2); the host's stays.
func TestDomainname(t *testing.T) {
	celltest.RequirePriv(t)
	host := kitDomainname(t)
	c := celltest.Start(t, append([]string{"run", "--domainname", "cell.example"}, celltest.ReadyCommand...)...)
	var got string
	require.NoError(t, celltest.InNamespace(c.Pid, "uts", func() error {
		got = kitDomainname(t)
		return nil
	}))
	assert.Equal(t, "cell.example", got, "the domain name in the container's UTS namespace")
	assert.Equal(t, host, kitDomainname(t), "the host's domain name changed")
	c.Stop(t)
}

// TestNoDomainname: without --domainname, the container has none.
func TestNoDomainname(t *testing.T) {
	celltest.RequirePriv(t)
	c := celltest.Start(t, append([]string{"run"}, celltest.ReadyCommand...)...)
	var got string
	require.NoError(t, celltest.InNamespace(c.Pid, "uts", func() error {
		got = kitDomainname(t)
		return nil
	}))
	assert.Contains(t, []string{"", "(none)"}, got, "a new UTS namespace starts as a copy of the host's")
	c.Stop(t)
}

package network

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParsePort(t *testing.T) {
	good := map[string]Port{
		"8080:80":              {HostPort: 8080, ContainerPort: 80, Proto: "tcp"},
		"127.0.0.1:8080:80":    {HostIP: "127.0.0.1", HostPort: 8080, ContainerPort: 80, Proto: "tcp"},
		"5353:53/udp":          {HostPort: 5353, ContainerPort: 53, Proto: "udp"},
		"10.0.0.1:1:65535/tcp": {HostIP: "10.0.0.1", HostPort: 1, ContainerPort: 65535, Proto: "tcp"},
	}
	for in, want := range good {
		got, err := ParsePort(in)
		if assert.NoError(t, err, in) {
			assert.Equal(t, want, got, in)
			again, err := ParsePort(got.String())
			assert.NoError(t, err, "String gives -p syntax")
			assert.Equal(t, got, again)
		}
	}
	bad := map[string]string{
		"":                  "two or three fields",
		"80":                "two or three fields",
		"1:2:3:4":           "two or three fields",
		"x:80":              "host port",
		"0:80":              "host port",
		"8080:65536":        "container port",
		"8080:-1":           "container port",
		"8080:80/sctp":      "neither tcp nor udp",
		"8080:80/":          "neither tcp nor udp",
		"localhost:8080:80": "not an IPv4 address",
		"::1:8080:80":       "two or three fields",
		"[::1]:8080:80":     "two or three fields",
		"300.1.1.1:8080:80": "not an IPv4 address",
	}
	for in, msg := range bad {
		_, err := ParsePort(in)
		if assert.Error(t, err, in) {
			assert.ErrorIs(t, err, ErrInvalid, in)
			assert.Contains(t, err.Error(), msg, in)
			assert.Contains(t, err.Error(), "HOSTPORT:CONTAINERPORT", "the message shows the syntax")
		}
	}
}

func TestPortConflicts(t *testing.T) {
	any80 := Port{HostPort: 80, Proto: "tcp"}
	lo80 := Port{HostIP: "127.0.0.1", HostPort: 80, Proto: "tcp"}
	other80 := Port{HostIP: "127.0.0.2", HostPort: 80, Proto: "tcp"}
	assert.True(t, any80.conflicts(lo80))
	assert.True(t, lo80.conflicts(any80))
	assert.False(t, lo80.conflicts(other80))
	assert.False(t, any80.conflicts(Port{HostPort: 80, Proto: "udp"}))
	assert.False(t, any80.conflicts(Port{HostPort: 81, Proto: "tcp"}))
}

func TestNewNetworkValidation(t *testing.T) {
	n, err := newNetwork("web", "10.77.203.0/24", bridgeFor("web"))
	require.NoError(t, err)
	assert.Equal(t, &Network{Name: "web", Bridge: "gc-web", Subnet: "10.77.203.0/24", Gateway: "10.77.203.1"}, n)

	for _, c := range []struct{ name, subnet, msg string }{
		{"a/b", "10.77.203.0/24", "network name"},
		{"../x", "10.77.203.0/24", "network name"},
		{"", "10.77.203.0/24", "network name"},
		{"x", "10.77.300.0/24", "not an IPv4 network"},
		{"x", "fd00::/64", "not an IPv4 network"},
		{"x", "10.77.203.5/24", "did you mean 10.77.203.0/24"},
		{"x", "10.77.203.0/30", "between 8 and 29"},
		{"x", "10.0.0.0/7", "between 8 and 29"},
	} {
		_, err := newNetwork(c.name, c.subnet, "gc-x")
		if assert.Error(t, err, c) {
			assert.ErrorIs(t, err, ErrInvalid)
			assert.Contains(t, err.Error(), c.msg)
		}
	}
}

func TestBridgeNames(t *testing.T) {
	assert.Equal(t, "gc-web", bridgeFor("web"))
	assert.Equal(t, "gc-123456789012", bridgeFor("123456789012"))
	long := bridgeFor("a-rather-long-network-name")
	assert.Len(t, long, 15)
	assert.True(t, strings.HasPrefix(long, "gc-"))
	assert.NotEqual(t, long, bridgeFor("a-rather-long-network-name2"))
	assert.Equal(t, "veth0123456789a", vethName("0123456789abcdef"))
}

// TestCreateRefuses needs no privileges: Create only reads the host's
// addresses and routes, and writes the networks file.
func TestCreateRefuses(t *testing.T) {
	m, err := Open(Options{StateDir: t.TempDir(), DefaultSubnet: "10.77.200.0/24", DefaultBridge: "gctest0"})
	require.NoError(t, err)

	_, err = m.Create("a/b", "10.77.203.0/24")
	assert.ErrorIs(t, err, ErrInvalid)
	_, err = m.Create("x", "10.77.200.128/25")
	assert.ErrorIs(t, err, ErrOverlap)
	assert.Contains(t, err.Error(), `network "bridge"`)
	_, err = m.Create("x", "127.0.0.0/16")
	assert.ErrorIs(t, err, ErrOverlap)
	assert.Contains(t, err.Error(), "host's address 127.0.0.1/8")
	_, err = m.Create(DefaultNetwork, "10.77.203.0/24")
	assert.ErrorIs(t, err, ErrExists)

	nets, err := m.List()
	require.NoError(t, err)
	assert.Len(t, nets, 1, "nothing half-made")

	n, err := m.Create("x", "10.77.203.0/24")
	require.NoError(t, err)
	_, err = m.Create("y", "10.77.203.0/25")
	assert.ErrorIs(t, err, ErrOverlap)
	assert.Contains(t, err.Error(), `network "x"`)
	got, err := m.Get("x")
	require.NoError(t, err)
	assert.Equal(t, n, got)
	_, err = m.Get("nope")
	assert.ErrorIs(t, err, ErrNotFound)
	assert.ErrorIs(t, m.Remove(DefaultNetwork, false), ErrInUse)
	assert.ErrorIs(t, m.Remove("x", true), ErrInUse)
	assert.ErrorIs(t, m.Remove("nope", false), ErrNotFound)
}

func TestWriteEtcFiles(t *testing.T) {
	dir := t.TempDir()
	hostResolv := filepath.Join(dir, "host-resolv.conf")
	require.NoError(t, os.WriteFile(hostResolv, []byte(
		"# comment\nnameserver 127.0.0.53\nnameserver 192.0.2.53\nnameserver ::1\n"+
			"nameserver 2001:db8::53\nsearch example.org\noptions edns0 trust-ad\n"), 0o644))
	out := filepath.Join(dir, "etc")
	require.NoError(t, os.Mkdir(out, 0o755))
	ep := &Endpoint{Name: "web", IP: "10.77.0.2"}
	hosts := map[string]string{"web": "10.77.0.2", "db": "10.77.0.3", "bad name": "10.77.0.4"}
	require.NoError(t, WriteEtcFiles(out, ep, "web-host", hosts, nil, hostResolv))

	read := func(name string) string {
		data, err := os.ReadFile(filepath.Join(out, name))
		require.NoError(t, err)
		return string(data)
	}
	assert.Equal(t, "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"+
		"10.77.0.2\tweb-host web\n10.77.0.3\tdb\n", read(HostsFile))
	assert.Equal(t, "web-host\n", read(HostnameFile))
	resolv := read(ResolvConfFile)
	assert.Contains(t, resolv, "nameserver 192.0.2.53\n")
	assert.Contains(t, resolv, "search example.org\noptions edns0 trust-ad\n")
	assert.NotContains(t, resolv, "127.0.0.53")
	assert.NotContains(t, resolv, "::1")
	assert.NotContains(t, resolv, "2001:db8")

	// Only loopback nameservers, or no file: no nameserver at all.
	require.NoError(t, os.WriteFile(hostResolv, []byte("nameserver 127.0.0.53\n"), 0o644))
	require.NoError(t, WriteEtcFiles(out, nil, "solo", nil, nil, hostResolv))
	assert.NotContains(t, read(ResolvConfFile), "\nnameserver")
	assert.Contains(t, read(HostsFile), "127.0.1.1\tsolo\n")
	require.NoError(t, WriteEtcFiles(out, nil, "solo", nil, nil, filepath.Join(dir, "missing")))
	assert.NotContains(t, read(ResolvConfFile), "\nnameserver")
}

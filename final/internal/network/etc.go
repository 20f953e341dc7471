package network

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/gocell/gocell/final/internal/persist"
)

// The files WriteEtcFiles writes into its directory, which the container
// package bind-mounts at /etc/hosts, /etc/hostname and /etc/resolv.conf.
const (
	HostsFile      = "hosts"
	HostnameFile   = "hostname"
	ResolvConfFile = "resolv.conf"
)

// WriteEtcFiles writes a container's hosts, hostname and resolv.conf into
// dir. hosts lists the other containers on its network (see Hosts); the
// container's own entry comes from ep and hostname. ep may be nil for a
// container without a network: it gets only localhost.
//
// resolvConf is the host's resolv.conf to take the DNS settings from
// ("" means /etc/resolv.conf). Its nameserver lines are copied except
// loopback ones: systemd-resolved's 127.0.0.53, or a local dnsmasq, listen
// on the host's loopback, which is not the container's. IPv6 nameservers
// are left out too, since gocell's networks are IPv4 only. search and
// options lines are copied. If no nameserver is left, the file has none
// and the container cannot resolve names: nothing here guesses a public
// DNS server or contacts one. (On a systemd-resolved host the caller can
// pass /run/systemd/resolve/resolv.conf, which lists the real upstream
// servers.)
//
// extra are more lines for /etc/hosts, as --add-host gives them:
// NAME:IP, checked by the caller.
func WriteEtcFiles(dir string, ep *Endpoint, hostname string, hosts map[string]string, extra []string, resolvConf string) error {
	if resolvConf == "" {
		resolvConf = "/etc/resolv.conf"
	}
	resolv, err := containerResolvConf(resolvConf)
	if err != nil {
		return fmt.Errorf("resolv.conf: %w", err)
	}
	files := map[string][]byte{
		HostsFile:      append(hostsFile(ep, hostname, hosts), extraHosts(extra)...),
		HostnameFile:   []byte(hostname + "\n"),
		ResolvConfFile: resolv,
	}
	for name, data := range files {
		// Made anew at every start: no fsync needed. Readable by the
		// container's users, whatever uid they run as.
		if err := persist.WriteFile(filepath.Join(dir, name), data, 0o644, false); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
	}
	return nil
}

// hostsFile is the container's /etc/hosts: localhost, the container
// itself under its hostname (and its name, if that differs), then the
// other containers of its network by name.
func hostsFile(ep *Endpoint, hostname string, hosts map[string]string) []byte {
	var b bytes.Buffer
	b.WriteString("127.0.0.1\tlocalhost\n")
	b.WriteString("::1\tlocalhost ip6-localhost ip6-loopback\n")
	if ep == nil {
		if hostname != "" {
			fmt.Fprintf(&b, "127.0.1.1\t%s\n", hostname)
		}
		return b.Bytes()
	}
	self := []string{hostname}
	if ep.Name != "" && ep.Name != hostname {
		self = append(self, ep.Name)
	}
	fmt.Fprintf(&b, "%s\t%s\n", ep.IP, strings.Join(self, " "))
	names := make([]string, 0, len(hosts))
	for name := range hosts {
		if name != ep.Name && name != hostname && validContainerName(name) &&
			net.ParseIP(hosts[name]) != nil {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	for _, name := range names {
		fmt.Fprintf(&b, "%s\t%s\n", hosts[name], name)
	}
	return b.Bytes()
}

// extraHosts are --add-host's lines for /etc/hosts.
func extraHosts(extra []string) []byte {
	var b bytes.Buffer
	for _, e := range extra {
		name, ip, _ := strings.Cut(e, ":")
		fmt.Fprintf(&b, "%s\t%s\n", ip, name)
	}
	return b.Bytes()
}

// containerResolvConf filters the host's resolv.conf as WriteEtcFiles
// describes. A missing file gives a file without nameservers.
func containerResolvConf(path string) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString("# Made by gocell from " + path + ", leaving out loopback and IPv6 servers.\n")
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return b.Bytes(), nil
	}
	if err != nil {
		return nil, err
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 {
			continue
		}
		switch fields[0] {
		case "nameserver":
			ip := net.ParseIP(fields[1])
			if ip == nil || ip.To4() == nil || ip.IsLoopback() {
				continue
			}
		case "search", "domain", "options":
		default:
			continue
		}
		b.WriteString(strings.Join(fields, " ") + "\n")
	}
	return b.Bytes(), sc.Err()
}

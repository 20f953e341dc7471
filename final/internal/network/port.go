package network

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Port is a published port: connections to HostIP:HostPort (any of the
// host's addresses when HostIP is empty) go to the container's
// ContainerPort.
type Port struct {
	HostIP        string `json:"hostIP,omitempty"`
	HostPort      int    `json:"hostPort"`
	ContainerPort int    `json:"containerPort"`
	Proto         string `json:"proto"` // tcp or udp
}

// String is the port as -p takes it: 127.0.0.1:8080:80/tcp.
func (p Port) String() string {
	s := fmt.Sprintf("%d:%d/%s", p.HostPort, p.ContainerPort, p.Proto)
	if p.HostIP != "" {
		s = p.HostIP + ":" + s
	}
	return s
}

// hostAddr is where the port listens on the host: 0.0.0.0:8080.
func (p Port) hostAddr() string {
	ip := p.HostIP
	if ip == "" {
		ip = "0.0.0.0"
	}
	return net.JoinHostPort(ip, strconv.Itoa(p.HostPort))
}

// ParsePort parses the value of -p: [HOSTIP:]HOSTPORT:CTRPORT[/tcp|udp],
// such as 8080:80, 127.0.0.1:8080:80 or 5353:53/udp. HOSTIP must be an
// IPv4 address, since gocell's networks are IPv4.
func ParsePort(s string) (Port, error) {
	p := Port{Proto: "tcp"}
	bad := func(format string, args ...any) (Port, error) {
		return Port{}, fmt.Errorf("-p %q: %s (want [HOSTIP:]HOSTPORT:CONTAINERPORT[/tcp|udp], "+
			"such as 8080:80): %w", s, fmt.Sprintf(format, args...), ErrInvalid)
	}
	spec, proto, hasProto := strings.Cut(s, "/")
	if hasProto {
		if proto != "tcp" && proto != "udp" {
			return bad("protocol %q is neither tcp nor udp", proto)
		}
		p.Proto = proto
	}
	parts := strings.Split(spec, ":")
	switch len(parts) {
	case 2:
	case 3:
		ip := net.ParseIP(parts[0])
		if ip == nil || ip.To4() == nil {
			return bad("host address %q is not an IPv4 address", parts[0])
		}
		p.HostIP = ip.To4().String()
		parts = parts[1:]
	default:
		return bad("expected two or three fields separated by ':'")
	}
	var err error
	if p.HostPort, err = parsePortNumber(parts[0]); err != nil {
		return bad("host port: %v", err)
	}
	if p.ContainerPort, err = parsePortNumber(parts[1]); err != nil {
		return bad("container port: %v", err)
	}
	return p, nil
}

// parsePortNumber parses a port number, 1 to 65535.
func parsePortNumber(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Errorf("%q is not a port number from 1 to 65535", s)
	}
	return n, nil
}

// normalizePorts copies ports built by a caller rather than by ParsePort,
// with the protocol tcp where none is given.
func normalizePorts(ports []Port) []Port {
	out := make([]Port, len(ports))
	for i, p := range ports {
		if p.Proto == "" {
			p.Proto = "tcp"
		}
		out[i] = p
	}
	return out
}

// validate checks a Port built by a caller rather than by ParsePort.
func (p Port) validate() error {
	if _, err := ParsePort(p.String()); err != nil {
		return err
	}
	return nil
}

// conflicts tells whether two published ports would catch the same
// connections: same protocol and port, and the same host address or
// either one on all addresses.
func (p Port) conflicts(q Port) bool {
	return p.Proto == q.Proto && p.HostPort == q.HostPort &&
		(p.HostIP == q.HostIP || p.HostIP == "" || q.HostIP == "")
}

// checkPortFree makes sure no program on the host uses a port, by binding
// it once and letting it go at once. It also fails for a HOSTIP that is
// not one of the host's addresses.
func checkPortFree(p Port) error {
	var err error
	if p.Proto == "udp" {
		var c net.PacketConn
		if c, err = net.ListenPacket("udp4", p.hostAddr()); err == nil {
			return c.Close()
		}
	} else {
		var l net.Listener
		if l, err = net.Listen("tcp4", p.hostAddr()); err == nil {
			return l.Close()
		}
	}
	switch {
	case errors.Is(err, unix.EADDRINUSE):
		return fmt.Errorf("publish %s: a program on the host uses %s/%s: %w",
			p, p.hostAddr(), p.Proto, ErrPortInUse)
	case errors.Is(err, unix.EADDRNOTAVAIL):
		return fmt.Errorf("publish %s: %s is not an address of this host: %w",
			p, p.HostIP, ErrInvalid)
	default:
		return fmt.Errorf("publish %s: %w", p, err)
	}
}

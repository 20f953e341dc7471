// Package names is gocell's one rule for the names people give to
// containers, networks and volumes, and the one check of container ids.
//
// The rule is Docker's: a letter or digit, then letters, digits, '_', '.'
// or '-'. A name made that way is a single path component that is never
// "." or "..", holds no '/', and no white space, so it can safely name a
// directory, a network link, or an entry in /etc/hosts.
//
// The checks are written out by hand instead of with package regexp on
// purpose. A package-level regexp.MustCompile runs in every gocell
// process as it starts, and a container's monitor and init are gocell
// processes too, so that cost is paid again on every run: a bounded
// repetition such as {0,127} compiles to 127 nested optional nodes, and
// touching that memory cost about a millisecond per process.
package names

import "fmt"

// The longest name of each kind.
const (
	// MaxContainer and MaxVolume keep a name well inside one path
	// component (255 bytes).
	MaxContainer = 128
	MaxVolume    = 128
	// MaxNetwork leaves room for the network's files and lock names.
	MaxNetwork = 64
	// MaxLink is the longest network interface name: IFNAMSIZ (16)
	// less the terminating NUL. netdevice(7)
	MaxLink = 15
)

// Valid reports whether s is a name of 1 to max characters that follows
// the rule.
func Valid(s string, max int) bool {
	if s == "" || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case i > 0 && (c == '_' || c == '.' || c == '-'):
		default:
			return false
		}
	}
	return true
}

// Rule says what Valid(s, max) wants, for error messages.
func Rule(max int) string {
	return fmt.Sprintf("use 1 to %d letters, digits, '_', '.' or '-', "+
		"starting with a letter or digit", max)
}

// HexID reports whether s is min to max lower-case hexadecimal digits,
// as a container id (64 digits) or a prefix of one.
func HexID(s string, min, max int) bool {
	if len(s) < min || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// MaxHostname is the longest host name the kernel keeps: HOST_NAME_MAX.
// gethostname(2)
const MaxHostname = 64

// Hostname reports whether s is a host name: labels of letters, digits
// and '-', neither starting nor ending with '-', joined by dots, 1 to
// MaxHostname characters in all (RFC 1123). It goes into the container's
// /etc/hosts and /etc/hostname, so it may hold no white space, newline
// or comment sign, which would add lines of its own there.
func Hostname(s string) bool {
	if s == "" || len(s) > MaxHostname {
		return false
	}
	label := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
			label++
		case c == '-' && label > 0 && i+1 < len(s) && s[i+1] != '.':
			label++
		case c == '.' && label > 0 && i+1 < len(s):
			label = 0
		default:
			return false
		}
	}
	return true
}

package names

import (
	"regexp"
	"strings"
	"testing"
)

// The hand-written checks must agree with the regular expressions they
// replace (the container, network, link and volume rules), on the edges
// of every rule.
func TestValidAgreesWithTheRegexps(t *testing.T) {
	volume := regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)
	rules := []struct {
		max   int
		match func(string) bool
	}{
		{MaxContainer, regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$`).MatchString},
		{MaxNetwork, regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$`).MatchString},
		{MaxLink, regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,14}$`).MatchString},
		// Volumes had no bound in the regexp, and a length check beside.
		{MaxVolume, func(s string) bool { return len(s) <= 128 && volume.MatchString(s) }},
	}
	cases := []string{"", "a", "Z", "0", "web-1", "my_app.v2", "-x", "_x", ".x",
		".", "..", "a/b", "a b", "a\tb", "a\n", "é", "a:b", "A-._"}
	for _, n := range []int{14, 15, 16, 63, 64, 65, 127, 128, 129} {
		cases = append(cases, strings.Repeat("a", n), "x"+strings.Repeat("-", n-1))
	}
	for _, r := range rules {
		for _, s := range cases {
			if got, want := Valid(s, r.max), r.match(s); got != want {
				t.Errorf("Valid(%q, %d) = %v, the regexp says %v", s, r.max, got, want)
			}
		}
	}
}

func TestHexID(t *testing.T) {
	id := strings.Repeat("0123456789abcdef", 4)
	for _, c := range []struct {
		s        string
		min, max int
		want     bool
	}{
		{id, 64, 64, true},
		{id[:12], 12, 64, true},
		{id[:11], 12, 64, false},
		{id + "0", 12, 64, false},
		{strings.ToUpper(id), 64, 64, false},
		{id[:63] + "g", 64, 64, false},
		{"", 0, 64, true},
		{".lock", 1, 64, false},
	} {
		if got := HexID(c.s, c.min, c.max); got != c.want {
			t.Errorf("HexID(%q, %d, %d) = %v, want %v", c.s, c.min, c.max, got, c.want)
		}
	}
}

// Hostname must agree with RFC 1123's labels, as a regexp writes them.
func TestHostname(t *testing.T) {
	label := `[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?`
	re := regexp.MustCompile(`^` + label + `(\.` + label + `)*$`)
	cases := []string{"", "a", "box", "web-1", "a.b.c", "my-host.example.org", "-a", "a-",
		"a.-b", "a-.b", ".a", "a.", "a..b", "a b", "a\nb", "a\tb", "a#b", "a_b", "é",
		"127.0.0.1", "a:b", strings.Repeat("a", 64), strings.Repeat("a", 65)}
	for _, s := range cases {
		want := len(s) <= MaxHostname && re.MatchString(s)
		if got := Hostname(s); got != want {
			t.Errorf("Hostname(%q) = %v, want %v", s, got, want)
		}
	}
}

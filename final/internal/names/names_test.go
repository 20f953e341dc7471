package names

import (
	"regexp"
	"strings"
	"testing"
)

// The hand-written checks must agree with the regular expressions they
// replace, on the edges of every rule.
func TestValidAgreesWithTheRegexp(t *testing.T) {
	re := regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$`)
	cases := []string{"", "a", "Z", "0", "web-1", "my_app.v2", "-x", "_x", ".x",
		".", "..", "a/b", "a b", "a\tb", "a\n", "é", "a:b", "A-._",
		strings.Repeat("a", 127), strings.Repeat("a", 128), strings.Repeat("a", 129)}
	for _, s := range cases {
		if got, want := Valid(s, MaxContainer), re.MatchString(s); got != want {
			t.Errorf("Valid(%q, 128) = %v, the regexp says %v", s, got, want)
		}
	}
	if !Valid("eth0", MaxLink) || Valid("a-name-of-16-chr", MaxLink) ||
		!Valid("a-name-of-15-ch", MaxLink) {
		t.Error("MaxLink is not 15 characters")
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

package volume

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseSpec(t *testing.T) {
	good := []struct {
		spec string
		want Mount
	}{
		{"/host/path:/ctr/path", Mount{Source: "/host/path", Destination: "/ctr/path"}},
		{"/h:/d:ro", Mount{Source: "/h", Destination: "/d", ReadOnly: true}},
		{"/h:/d:rw", Mount{Source: "/h", Destination: "/d"}},
		{"/h//x/../y/:/d/./e/", Mount{Source: "/h/y", Destination: "/d/e"}},
		{"/:/host", Mount{Source: "/", Destination: "/host"}},
		{"name:/d:ro", Mount{Source: "name", Destination: "/d", ReadOnly: true, Named: true}},
		{"data:/var/lib/data", Mount{Source: "data", Destination: "/var/lib/data", Named: true}},
		{"a:/b", Mount{Source: "a", Destination: "/b", Named: true}},
		{"My_vol.1-x:/d", Mount{Source: "My_vol.1-x", Destination: "/d", Named: true}},
		{"0:/d", Mount{Source: "0", Destination: "/d", Named: true}},
	}
	for _, tc := range good {
		t.Run(tc.spec, func(t *testing.T) {
			m, err := ParseSpec(tc.spec)
			require.NoError(t, err)
			assert.Equal(t, tc.want, m)
		})
	}

	// Each bad spec, and words the error must contain: the bad part.
	bad := []struct {
		spec string
		want []string
	}{
		{"a:b", []string{`destination "b"`, "not an absolute path"}},
		{"/x", []string{"missing destination"}},
		{"name", []string{"missing destination"}},
		{"", []string{"missing destination"}},
		{":/d", []string{"empty source"}},
		{"/h:", []string{"empty destination"}},
		{"/h:/d:rw:extra", []string{"too many fields (4)"}},
		{"/h:/d:", []string{`mode ""`}},
		{"/h:/d:RO", []string{`mode "RO"`, "ro or rw"}},
		{"/h:/d:z", []string{`mode "z"`}},
		{"na/me:/d", []string{`source "na/me"`, "relative path"}},
		{"data/x:/d", []string{`source "data/x"`, "relative path"}},
		{"./x:/d", []string{`source "./x"`, "relative path"}},
		{"..:/d", []string{`source ".."`, "relative path"}},
		{".hidden:/d", []string{`source ".hidden"`, "not a valid volume name"}},
		{"-x:/d", []string{`source "-x"`, "not a valid volume name"}},
		{"na me:/d", []string{`source "na me"`, "not a valid volume name"}},
		{strings.Repeat("a", 129) + ":/d", []string{"not a valid volume name", "1 to 128"}},
		{"/h:/", []string{`destination "/"`, "root"}},
		{"/h:/..", []string{`destination "/.."`, "root"}},
		{"/h:d", []string{`destination "d"`, "not an absolute path"}},
		{"/h\x00:/d", []string{"NUL"}},
	}
	for _, tc := range bad {
		t.Run(tc.spec, func(t *testing.T) {
			_, err := ParseSpec(tc.spec)
			require.Error(t, err)
			assert.ErrorIs(t, err, ErrInvalid)
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}

func TestMountString(t *testing.T) {
	for _, s := range []string{"/h:/d", "/h:/d:ro", "name:/d:ro"} {
		m, err := ParseSpec(s)
		require.NoError(t, err)
		assert.Equal(t, s, m.String())
	}
}

func TestSortMounts(t *testing.T) {
	in := []Mount{
		{Source: "a", Destination: "/x/y/z"},
		{Source: "b", Destination: "/x/"},
		{Source: "c", Destination: "/w"},
		{Source: "d", Destination: "/x/y"},
	}
	got, err := SortMounts(in)
	require.NoError(t, err)
	var order []string
	for _, m := range got {
		order = append(order, m.Source+m.Destination)
	}
	// Parents first; equal depths keep the user's order.
	assert.Equal(t, []string{"b/x", "c/w", "d/x/y", "a/x/y/z"}, order)
	assert.Equal(t, "/x/y/z", in[0].Destination, "input left alone")

	_, err = SortMounts([]Mount{{Source: "a", Destination: "/d"},
		{Source: "b", Destination: "/d/"}})
	assert.ErrorIs(t, err, ErrInvalid)
	assert.ErrorContains(t, err, "two mounts on /d")

	for _, dst := range []string{"d", "", "/", "/.."} {
		_, err = SortMounts([]Mount{{Source: "a", Destination: dst}})
		assert.ErrorIs(t, err, ErrInvalid, dst)
	}
}

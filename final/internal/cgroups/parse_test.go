package cgroups

import (
	"runtime"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestParseSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
	}{
		{"1048576", 1048576},
		{"512k", 512 << 10},
		{"512K", 512 << 10},
		{"64M", 64 << 20},
		{"64m", 64 << 20},
		{"64MB", 64 << 20},
		{"64MiB", 64 << 20},
		{"1g", 1 << 30},
		{"1G", 1 << 30},
		{"2t", 2 << 40},
		{"100b", 100},
		{" 16M ", 16 << 20},
	} {
		got, err := ParseSize(tc.in)
		if assert.NoError(t, err, tc.in) {
			assert.Equal(t, tc.want, got, tc.in)
		}
	}
	for _, in := range []string{"12XB", "0", "-1", "", "M", "64i", "ib", "5bi", "1.5G", "64 M",
		"0x10", "9999999999999999999", "9000000000T", "1e6", "64MM"} {
		_, err := ParseSize(in)
		assert.Error(t, err, "%q", in)
	}
}

func TestParseCPUs(t *testing.T) {
	n := runtime.NumCPU()
	for _, in := range []string{"0.5", "1", "0.01", strconv.Itoa(n)} {
		_, err := ParseCPUs(in)
		assert.NoError(t, err, in)
	}
	got, _ := ParseCPUs("0.25")
	assert.Equal(t, 0.25, got)
	for _, in := range []string{"0", "-1", "0.001", "", "x", "NaN", "Inf",
		strconv.Itoa(n + 1)} {
		_, err := ParseCPUs(in)
		assert.Error(t, err, "%q", in)
	}
}

package credentials

import (
	"path/filepath"
	"testing"
)

func TestOnlyLoopback(t *testing.T) {
	const header = "Inter-|   Receive                                                |  Transmit\n" +
		" face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n"
	const lo = "    lo:    1200      12    0    0    0     0          0         0     1200      12    0    0    0     0       0          0\n"
	const eth = "  eth0: 9823412    7812    0    0    0     0          0         0   412311    3121    0    0    0     0       0          0\n"
	dir := t.TempDir()
	for _, tc := range []struct {
		name, body string
		want       bool
	}{
		{"PrivateNetwork: loopback only", header + lo, true},
		{"host network", header + lo + eth, false},
		{"no devices at all", header, false},
		{"unreadable", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, "missing")
			if tc.body != "" {
				path = filepath.Join(dir, tc.name)
				write(t, path, tc.body, 0o600)
			}
			if got := onlyLoopback(path); got != tc.want {
				t.Errorf("onlyLoopback = %v, want %v", got, tc.want)
			}
		})
	}
}

package agent

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/prepull/prepull/internal/pak/paktest"
)

// clockWatcher is a watcher on a temporary folder whose clock the test moves.
type clockWatcher struct {
	*watcher
	t     *testing.T
	clock time.Time
	got   []found
}

func newClockWatcher(t *testing.T, settle time.Duration) *clockWatcher {
	cw := &clockWatcher{t: t, clock: time.Now()}
	cw.watcher = newWatcher(t.TempDir(), timing{settle: settle, rescan: time.Hour}, zap.NewNop(), func(f found) { cw.got = append(cw.got, f) })
	cw.now = func() time.Time { return cw.clock }
	cw.scan() // opens the folder, as run does first
	t.Cleanup(cw.release)
	return cw
}

func (cw *clockWatcher) advance(d time.Duration) {
	cw.clock = cw.clock.Add(d)
	cw.checkSettled()
}

func (cw *clockWatcher) write(name string, data []byte) {
	cw.t.Helper()
	if err := os.WriteFile(filepath.Join(cw.dir, name), data, 0o600); err != nil {
		cw.t.Fatal(err)
	}
}

func TestWatcherWaitsForFileToSettle(t *testing.T) {
	cw := newClockWatcher(t, 2*time.Second)
	data := paktest.Pak{Registry: registry}.Bytes()
	cw.write("a.pak", data[:len(data)/2])
	cw.scan()
	cw.advance(time.Second)
	if len(cw.got) != 0 {
		t.Fatal("taken before it settled")
	}
	// The copy goes on: the settle time starts again.
	cw.write("a.pak", data)
	cw.advance(1500 * time.Millisecond)
	cw.advance(1500 * time.Millisecond)
	if len(cw.got) != 0 {
		t.Fatal("taken less than the settle time after it last changed")
	}
	cw.advance(time.Second)
	if len(cw.got) != 1 || cw.got[0].perr != nil {
		t.Fatalf("got %+v, want a.pak read without error", cw.got)
	}
	// Unchanged, it is not taken again by later scans.
	cw.scan()
	cw.advance(time.Hour)
	if len(cw.got) != 1 {
		t.Fatalf("taken %d times", len(cw.got))
	}
	// Changed, it is taken again.
	cw.write("a.pak", paktest.Pak{Registry: registry, Version: "2.0.0"}.Bytes())
	cw.scan()
	cw.advance(3 * time.Second)
	if len(cw.got) != 2 || cw.got[0].sha == cw.got[1].sha {
		t.Fatalf("got %d deliveries, want the changed file a second time", len(cw.got))
	}
}

func TestWatcherGivesBrokenFileMoreTime(t *testing.T) {
	cw := newClockWatcher(t, time.Second)
	cw.write("half.pak", paktest.Pak{Registry: registry}.Bytes()[:100])
	cw.scan()
	cw.advance(2 * time.Second)
	if len(cw.got) != 0 {
		t.Fatal("a broken file with a fresh mtime was given up on at once")
	}
	cw.advance(invalidGrace(time.Second))
	cw.advance(2 * time.Second)
	if len(cw.got) != 1 || cw.got[0].perr == nil {
		t.Fatalf("got %+v, want half.pak delivered as invalid", cw.got)
	}
}

func TestEligibleName(t *testing.T) {
	tests := []struct {
		name string
		want bool
	}{
		{"MyAdapter_1.0.0.pak", true},
		{"UPPER.PAK", true},
		{"MyAdapter_1.0.0.prepull", true}, // what prepull keep and slim write
		{".prepull", false},
		{".MyAdapter_1.0.0.prepull", false},
		{".MyAdapter_1.0.0.pak", false},
		{".pak", false},
		{"a.pak.part", false},
		{"a.pak~", false},
		{"a.zip", false},
		{"pak", false},
	}
	for _, tt := range tests {
		if got := eligibleName(tt.name); got != tt.want {
			t.Errorf("eligibleName(%q) = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestNextCheckIsTheEarliestSettleDeadline(t *testing.T) {
	cw := newClockWatcher(t, 2*time.Second)
	if _, ok := cw.nextCheck(); ok {
		t.Fatal("no candidate, yet a check is due: an idle watcher must not wake")
	}
	cw.write("a.pak", []byte("first"))
	cw.consider("a.pak", true)
	start := cw.clock
	cw.clock = cw.clock.Add(time.Second)
	cw.write("b.pak", []byte("second"))
	cw.consider("b.pak", true)
	next, ok := cw.nextCheck()
	if !ok || !next.Equal(start.Add(2*time.Second)) {
		t.Fatalf("nextCheck = %v, %v; want a.pak's deadline %v", next, ok, start.Add(2*time.Second))
	}
}

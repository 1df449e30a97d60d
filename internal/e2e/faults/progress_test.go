//go:build linux

package faults

import (
	"context"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prepull/prepull/internal/e2e"
	"github.com/prepull/prepull/internal/engine"
	"github.com/prepull/prepull/internal/pull"
	"github.com/prepull/prepull/internal/testenv"
)

// TestFaultProgressPhasesAndStall feeds a pull.Meter the real engine's
// progress events of a pull through a registry the test holds: the lines
// say each phase (downloading, extracting, done) and, while a held layer
// does not move, for how long and when the pull gives up. The meter's clock
// is the test's: one interval passes with each event that changes what the
// meter says (a second meter, flushed after each event, tells), and two
// while the layer is held, so no line waits on wall time.
func TestFaultProgressPhasesAndStall(t *testing.T) {
	f := e2e.NewFixture(t, "proj/fault-progress")
	digest := f.Docker.PushImage(t, f.Reg, "proj/fault-progress-big", e2e.FaultImage)
	p := testenv.StartFaultProxy(t, f.Reg.Addr)
	p.StallBlobs(testenv.Stall{After: 256 << 10, Count: 1})
	ref := p.Addr + "/proj/fault-progress-big@" + digest
	eng, err := engine.NewDocker(f.Docker.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()

	const every, stall = 30 * time.Second, 10 * time.Minute
	var (
		mu     sync.Mutex
		clock  = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
		lines  []string
		status = map[string]string{} // each layer's last status
	)
	advance := func(d time.Duration) {
		mu.Lock()
		defer mu.Unlock()
		clock = clock.Add(d)
	}
	m := pull.NewMeter(every, stall, func(line string) {
		mu.Lock()
		defer mu.Unlock()
		lines = append(lines, line)
	})
	m.SetClock(func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return clock
	})
	// The shadow meter never ticks; Flush emits only a line that differs
	// from its last, so an emit is a change of the meter's progress.
	var changed bool
	shadow := pull.NewMeter(math.MaxInt64, 0, func(string) { changed = true })
	said := func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), lines...)
	}

	done := make(chan error, 1)
	go func() {
		auth := &engine.Auth{ServerAddress: p.Addr, Username: "alice", Password: f.Password}
		done <- eng.Pull(context.Background(), ref, auth, func(ev engine.Progress) {
			// An interval passes with each event that changes the
			// progress the meter says: its phase, layers or bytes.
			changed = false
			shadow.Update(ev)
			shadow.Flush()
			if changed {
				advance(every)
			}
			mu.Lock()
			if ev.Layer != "" {
				status[ev.Layer] = ev.Status
			}
			mu.Unlock()
			m.Update(ev)
		})
	}()

	// Held: one layer downloading, every other one downloaded (or, before
	// the held one, extracted too). No event comes until the release.
	e2e.WaitUntil(t, "one layer is held and the others are downloaded", func() bool {
		mu.Lock()
		defer mu.Unlock()
		held, others := 0, 0
		for _, s := range status {
			switch s {
			case "Downloading":
				held++
			case "Download complete", "Pull complete":
				others++
			}
		}
		return p.Stalls().Started == 1 && held == 1 && held+others == len(status) && len(status) >= 3
	})
	advance(2 * every)
	m.Tick()
	got := said()
	held := got[len(got)-1]
	if !strings.HasPrefix(held, "downloading ") || !strings.HasSuffix(held, ", no progress for 1m0s (gives up after 10m0s)") {
		t.Errorf("while the layer is held the meter says %q; want downloading, no progress for 1m0s (gives up after 10m0s)", held)
	}

	p.Release()
	if err := <-done; err != nil {
		t.Fatalf("pull after the release: %v", err)
	}
	m.Flush()
	got = said()
	t.Logf("progress lines:\n%s", strings.Join(got, "\n"))
	for _, phase := range []string{"downloading ", "extracting ", "done "} {
		if !containsPrefix(got, phase) {
			t.Errorf("no %q line", phase)
		}
	}
	if last := got[len(got)-1]; !strings.HasPrefix(last, "done ") {
		t.Errorf("the last line is %q, want done", last)
	}
	for _, l := range got {
		if strings.Contains(l, "no progress") && l != held {
			t.Errorf("%q says no progress, but only the held layer stopped", l)
		}
	}
}

// containsPrefix tells whether one of lines starts with prefix.
func containsPrefix(lines []string, prefix string) bool {
	for _, l := range lines {
		if strings.HasPrefix(l, prefix) {
			return true
		}
	}
	return false
}

package pull

import (
	"reflect"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/prepull/prepull/internal/engine"
)

func TestMeter(t *testing.T) {
	const mib = 1 << 20
	tests := []struct {
		name   string
		events []engine.Progress // one per second of the fake clock
		every  time.Duration
		want   []string // lines emitted, then the Flush line
	}{
		{
			name: "two layers, a line every 2 seconds",
			events: []engine.Progress{
				{Status: "Pulling from proj/x"},
				{Layer: "a", Status: "Pulling fs layer"},
				{Layer: "b", Status: "Pulling fs layer"},
				{Layer: "a", Status: "Downloading", Current: 1 * mib, Total: 4 * mib},
				{Layer: "b", Status: "Downloading", Current: 1 * mib, Total: 2 * mib},
				{Layer: "b", Status: "Download complete"},
				{Layer: "a", Status: "Downloading", Current: 3 * mib, Total: 4 * mib},
				{Layer: "a", Status: "Download complete"},
				{Layer: "a", Status: "Extracting", Current: 1, Total: 4 * mib},
				{Layer: "a", Status: "Pull complete"},
				{Status: "Digest: sha256:0"},
			},
			every: 2 * time.Second,
			want: []string{
				"downloading 1.0 MiB / 4.0 MiB",
				"downloading 3.0 MiB / 6.0 MiB",
				"extracting 1 of 2 layers, 6.0 MiB / 6.0 MiB",
				"extracting 2 of 2 layers, 6.0 MiB / 6.0 MiB",
			},
		},
		{
			name: "a layer resumed with a Range request keeps its size",
			events: []engine.Progress{
				{Layer: "a", Status: "Downloading", Current: 6 * mib, Total: 16 * mib},
				{Layer: "a", Status: "Retrying in 5 seconds"},
				{Layer: "a", Status: "Downloading", Current: 1 * mib, Total: 10 * mib},
				{Layer: "a", Status: "Download complete"},
			},
			every: time.Second,
			want: []string{
				"downloading 6.0 MiB / 16.0 MiB, no progress for 1s", // retrying
				"downloading 7.0 MiB / 16.0 MiB",
				"extracting 1 of 1 layers, 16.0 MiB / 16.0 MiB",
			},
		},
		{
			name: "nothing new, nothing emitted twice",
			events: []engine.Progress{
				{Layer: "a", Status: "Already exists"},
				{Layer: "a", Status: "Already exists"},
				{Layer: "a", Status: "Already exists"},
			},
			every: time.Second,
			want:  []string{"done 0.0 MiB / 0.0 MiB"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			m := NewMeter(tt.every, 0, func(line string) { got = append(got, line) })
			now := time.Unix(1000, 0)
			m.now = func() time.Time { return now }
			for _, p := range tt.events {
				now = now.Add(time.Second)
				m.Update(p)
			}
			m.Flush()
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("lines:\n%q\nwant:\n%q", got, tt.want)
			}
		})
	}
}

// TestLogProgressFlushesTheLastLine: a pull shorter than the interval still
// logs its bytes once, when it ends, with the reference as a field.
func TestLogProgressFlushesTheLastLine(t *testing.T) {
	core, logs := observer.New(zap.InfoLevel)
	sink, done := LogProgress(zap.New(core), time.Hour, 0)("r/x@sha256:0")
	sink(engine.Progress{Layer: "a", Status: "Downloading", Current: 1 << 20, Total: 2 << 20})
	if n := logs.Len(); n != 0 {
		t.Fatalf("%d lines before the interval, want none", n)
	}
	_, quiet := LogProgress(zap.New(core), time.Hour, 0)("r/y@sha256:0")
	quiet() // an attempt that failed before any layer: nothing to say
	if n := logs.Len(); n != 0 {
		t.Fatalf("%d lines for an attempt without progress, want none", n)
	}
	done()
	entries := logs.AllUntimed()
	if len(entries) != 1 {
		t.Fatalf("%d lines after done, want 1", len(entries))
	}
	fields := entries[0].ContextMap()
	if entries[0].Message != "pulling" || fields["reference"] != "r/x@sha256:0" || fields["progress"] != "downloading 1.0 MiB / 2.0 MiB" {
		t.Errorf("logged %q %v", entries[0].Message, fields)
	}
}

// TestMeterSaysAStall checks the lines of a pull that stops moving: one
// every interval, by Tick alone, saying for how long nothing moved and when
// the pull gives up; then extraction, a phase of its own.
func TestMeterSaysAStall(t *testing.T) {
	var got []string
	m := NewMeter(5*time.Second, 30*time.Second, func(line string) { got = append(got, line) })
	now := time.Unix(1000, 0)
	m.now = func() time.Time { return now }
	m.Tick() // before any layer: nothing to say
	m.Update(engine.Progress{Layer: "a", Status: "Downloading", Current: 1 << 20, Total: 4 << 20})
	for range 3 {
		now = now.Add(5 * time.Second)
		m.Tick()
	}
	now = now.Add(time.Second)
	m.Update(engine.Progress{Layer: "a", Status: "Extracting", Current: 1, Total: 4 << 20})
	now = now.Add(5 * time.Second)
	m.Tick()
	m.Flush()
	want := []string{
		"downloading 1.0 MiB / 4.0 MiB, no progress for 5s (gives up after 30s)",
		"downloading 1.0 MiB / 4.0 MiB, no progress for 10s (gives up after 30s)",
		"downloading 1.0 MiB / 4.0 MiB, no progress for 15s (gives up after 30s)",
		"extracting 1 of 1 layers, 4.0 MiB / 4.0 MiB, no progress for 5s (gives up after 30s)",
		"extracting 1 of 1 layers, 4.0 MiB / 4.0 MiB",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("lines:\n%q\nwant:\n%q", got, want)
	}
}

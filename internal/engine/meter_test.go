package engine

import (
	"reflect"
	"testing"
	"time"
)

func TestMeter(t *testing.T) {
	const ref = "r/x@sha256:0"
	const mib = 1 << 20
	tests := []struct {
		name   string
		events []Progress // one per second of the fake clock
		every  time.Duration
		want   []string // lines emitted, then the Flush line
	}{
		{
			name: "two layers, a line every 2 seconds",
			events: []Progress{
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
				ref + ": 1.0 MiB / 4.0 MiB",
				ref + ": 3.0 MiB / 6.0 MiB",
				ref + ": 6.0 MiB / 6.0 MiB",
			},
		},
		{
			name: "a layer resumed with a Range request keeps its size",
			events: []Progress{
				{Layer: "a", Status: "Downloading", Current: 6 * mib, Total: 16 * mib},
				{Layer: "a", Status: "Retrying in 5 seconds"},
				{Layer: "a", Status: "Downloading", Current: 1 * mib, Total: 10 * mib},
				{Layer: "a", Status: "Download complete"},
			},
			every: time.Second,
			want: []string{
				ref + ": 6.0 MiB / 16.0 MiB",
				ref + ": 7.0 MiB / 16.0 MiB",
				ref + ": 16.0 MiB / 16.0 MiB",
			},
		},
		{
			name: "nothing new, nothing emitted twice",
			events: []Progress{
				{Layer: "a", Status: "Already exists"},
				{Layer: "a", Status: "Already exists"},
				{Layer: "a", Status: "Already exists"},
			},
			every: time.Second,
			want:  []string{ref + ": 0.0 MiB / 0.0 MiB"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			m := NewMeter(ref, tt.every, func(line string) { got = append(got, line) })
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
			if last := m.Line(); last != tt.want[len(tt.want)-1] {
				t.Errorf("Line() = %q, want %q", last, tt.want[len(tt.want)-1])
			}
		})
	}
}

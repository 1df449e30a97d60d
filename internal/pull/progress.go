package pull

import (
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/prepull/prepull/internal/engine"
)

// LogProgress returns a Puller.Progress that logs a pull's bytes on log as
// "pulling" lines, with the reference and the progress ("12.3 MiB / 45.6
// MiB"), at most once every interval, and the last line when the attempt
// ends. The one-shot (off a terminal) and the agent log progress this way.
func LogProgress(log *zap.Logger, every time.Duration) func(ref string) (func(engine.Progress), func()) {
	return func(ref string) (func(engine.Progress), func()) {
		m := NewMeter(every, func(line string) {
			log.Info("pulling", zap.String("reference", ref), zap.String("progress", line))
		})
		return m.Update, m.Flush
	}
}

// Meter turns a pull's progress events into occasional plain-text lines for
// logs and other non-terminals, such as "12.3 MiB / 45.6 MiB". It counts
// downloaded bytes summed over layers; extraction is not counted. Its methods
// are safe for concurrent use.
type Meter struct {
	every time.Duration
	emit  func(line string)
	now   func() time.Time // replaced by tests

	mu     sync.Mutex
	layers map[string]layerBytes
	last   time.Time
	said   string
}

type layerBytes struct{ current, total int64 }

// NewMeter returns a Meter that calls emit with a line at most once every
// interval, the first one interval after the first event, and never twice in
// a row with the same text.
func NewMeter(every time.Duration, emit func(line string)) *Meter {
	return &Meter{every: every, emit: emit, now: time.Now, layers: map[string]layerBytes{}}
}

// Update records one progress event and emits a line when one is due. Its
// signature fits Engine.Pull's progress callback.
func (m *Meter) Update(p engine.Progress) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if p.Layer == "" {
		return
	}
	l := m.layers[p.Layer]
	switch p.Status {
	case "Downloading":
		if p.Total > 0 && p.Total < l.total {
			// The engine resumed the layer with a Range request: it counts
			// the rest only. Keep the layer's size and what came before.
			l.current = l.total - p.Total + p.Current
		} else {
			l = layerBytes{current: p.Current, total: p.Total}
		}
	case "Verifying Checksum", "Download complete", "Extracting", "Pull complete":
		// The download is over; Extracting's counts are of another kind.
		if l.total > 0 {
			l.current = l.total
		}
	}
	m.layers[p.Layer] = l
	t := m.now()
	if m.last.IsZero() {
		m.last = t // the first line comes one interval after the first event
	}
	if t.Sub(m.last) >= m.every {
		m.last = t
		m.say()
	}
}

// Flush emits the current line now, unless it was the last one emitted or
// no layer was reported (an attempt that failed before it began); call it
// when the pull ends.
func (m *Meter) Flush() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.layers) == 0 {
		return
	}
	m.last = m.now()
	m.say()
}

func (m *Meter) say() {
	line := m.line()
	if line == m.said {
		return
	}
	m.said = line
	m.emit(line)
}

func (m *Meter) line() string {
	var current, total int64
	for _, l := range m.layers {
		current += l.current
		total += l.total
	}
	return fmt.Sprintf("%s / %s", Mebibytes(current), Mebibytes(total))
}

// Mebibytes says n bytes as progress lines do: "12.3 MiB".
func Mebibytes(n int64) string {
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}

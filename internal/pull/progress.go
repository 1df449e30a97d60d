package pull

import (
	"fmt"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/prepull/prepull/internal/engine"
)

// LogProgress returns a Puller.Progress that logs a pull's progress on log
// as "pulling" lines, with the reference, the phase and the bytes
// ("downloading 12.3 MiB / 45.6 MiB"), once every interval while the pull
// runs, moving or not, and the last line when the attempt ends. While
// nothing moves the line says for how long, and when a pull gives up (stall,
// when not 0). The one-shot (off a terminal) and the agent log progress
// this way.
func LogProgress(log *zap.Logger, every, stall time.Duration) func(ref string) (func(engine.Progress), func()) {
	return func(ref string) (func(engine.Progress), func()) {
		m := NewMeter(every, stall, func(line string) {
			log.Info("pulling", zap.String("reference", ref), zap.String("progress", line))
		})
		return m.Update, m.Run()
	}
}

// Meter turns a pull's progress events into occasional plain-text lines,
// such as "downloading 12.3 MiB / 45.6 MiB" or "extracting 1 of 3 layers,
// 45.6 MiB / 45.6 MiB, no progress for 20s (gives up after 30s)": the phase
// (downloading, verifying, extracting), the downloaded bytes summed over
// layers, and how long nothing moved. Its methods are safe for concurrent
// use.
type Meter struct {
	every, stall time.Duration
	emit         func(line string)
	now          func() time.Time // replaced by tests

	mu     sync.Mutex
	layers map[string]layerBytes
	last   time.Time // when a line was last due
	moved  time.Time // when the progress last changed
	state  string    // the progress without the idle time, to tell a move
	said   string
}

type layerBytes struct {
	current, total int64
	phase          string // downloading, verifying, extracting or done
}

// NewMeter returns a Meter that calls emit with a line at most once every
// interval, the first one interval after the first event, and never twice in
// a row with the same text; stall, when not 0, is said while nothing moves.
func NewMeter(every, stall time.Duration, emit func(line string)) *Meter {
	return &Meter{every: every, stall: stall, emit: emit, now: time.Now, layers: map[string]layerBytes{}}
}

// SetClock makes m read the time from now instead of the system clock, for
// a test that moves the time itself.
func (m *Meter) SetClock(now func() time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.now = now
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
	case "Pulling fs layer", "Waiting":
		l.phase = "downloading"
	case "Downloading":
		if p.Total > 0 && p.Total < l.total {
			// The engine resumed the layer with a Range request: it counts
			// the rest only. Keep the layer's size and what came before.
			l.current = l.total - p.Total + p.Current
		} else {
			l.current, l.total = p.Current, p.Total
		}
		l.phase = "downloading"
	case "Verifying Checksum":
		l.phase = "verifying"
	case "Download complete", "Extracting":
		l.phase = "extracting"
	case "Pull complete", "Already exists":
		l.phase = "done"
	}
	if p.Status != "Downloading" && l.total > 0 && l.phase != "downloading" {
		l.current = l.total // the download is over; Extracting's counts are of another kind
	}
	m.layers[p.Layer] = l
	t := m.now()
	if m.last.IsZero() {
		m.last = t // the first line comes one interval after the first event
	}
	if s := m.progress(); s != m.state {
		m.state, m.moved = s, t
	}
	m.tick(t)
}

// Tick emits a line when one is due, whether or not anything moved: call it
// every interval while the pull runs.
func (m *Meter) Tick() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.layers) > 0 {
		m.tick(m.now())
	}
}

func (m *Meter) tick(t time.Time) {
	if t.Sub(m.last) >= m.every {
		m.last = t
		m.say(t)
	}
}

// Run ticks the meter every interval until the returned function is
// called; that function then emits the last line (see Flush).
func (m *Meter) Run() (stop func()) {
	ticker := time.NewTicker(m.every)
	quit, finished := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		for {
			select {
			case <-ticker.C:
				m.Tick()
			case <-quit:
				return
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			ticker.Stop()
			close(quit)
			<-finished
			m.Flush()
		})
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
	m.moved = m.last // what ended is not stalled
	m.say(m.last)
}

func (m *Meter) say(t time.Time) {
	line := m.progress()
	if idle := t.Sub(m.moved).Round(time.Second); idle >= m.every && idle > 0 && !strings.HasPrefix(line, "done ") {
		line += fmt.Sprintf(", no progress for %s", idle)
		if m.stall > 0 {
			line += fmt.Sprintf(" (gives up after %s)", m.stall)
		}
	}
	if line == m.said {
		return
	}
	m.said = line
	m.emit(line)
}

// progress says the phase and the bytes: the earliest phase any layer is
// in, and for extracting how many layers are done.
func (m *Meter) progress() string {
	var current, total int64
	count := map[string]int{}
	for _, l := range m.layers {
		current += l.current
		total += l.total
		count[l.phase]++
	}
	bytes := fmt.Sprintf("%s / %s", Mebibytes(current), Mebibytes(total))
	switch {
	case count["downloading"] > 0:
		return "downloading " + bytes
	case count["verifying"] > 0:
		return "verifying " + bytes
	case count["extracting"] > 0:
		return fmt.Sprintf("extracting %d of %d layers, %s", count["done"]+1, len(m.layers), bytes)
	}
	return "done " + bytes
}

// Mebibytes says n bytes as progress lines do: "12.3 MiB".
func Mebibytes(n int64) string {
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}

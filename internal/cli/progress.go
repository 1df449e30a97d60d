package cli

import (
	"io"
	"sync"
	"time"

	"github.com/prepull/prepull/internal/display"
	"github.com/prepull/prepull/internal/engine"
	"github.com/prepull/prepull/internal/pull"
)

// terminalProgress renders progress events on w, a terminal, the way the
// docker CLI does (one line per layer, updated in place), with a line of
// prepull's own below them, "prepull: downloading 12.3 MiB / 45.6 MiB",
// said at least every interval, with how long nothing moved and when the
// pull gives up (stall). Feed Pull's events to sink; call done when the
// pull ends, to flush and wait for the renderer. sink is safe for
// concurrent use and does nothing after done; done may be called more than
// once.
func terminalProgress(w io.Writer, every, stall time.Duration) (sink func(engine.Progress), done func()) {
	view := engine.NewTerminalProgress(w)
	meter := pull.NewMeter(every, stall, func(line string) { view.Line("prepull", line) })
	stopMeter := meter.Run()
	sink = func(p engine.Progress) {
		// The engine relays what the registry says: never to the terminal raw.
		view.Show(engine.Progress{Layer: display.Text(p.Layer), Status: display.Text(p.Status), Current: p.Current, Total: p.Total})
		meter.Update(p)
	}
	var once sync.Once
	done = func() {
		once.Do(func() {
			stopMeter()
			view.Close()
		})
	}
	return sink, done
}

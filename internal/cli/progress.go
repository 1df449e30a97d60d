package cli

import (
	"encoding/json"
	"io"
	"sync"
	"time"

	"github.com/docker/docker/pkg/jsonmessage"
	"github.com/moby/term"

	"github.com/prepull/prepull/internal/display"
	"github.com/prepull/prepull/internal/engine"
	"github.com/prepull/prepull/internal/pull"
)

// terminalProgress renders progress events on w, a terminal, the way the
// docker CLI does (one line per layer, updated in place), using Docker's own
// renderer, with a line of prepull's own below them, "prepull: downloading
// 12.3 MiB / 45.6 MiB", said at least every interval, with how long nothing
// moved and when the pull gives up (stall). Feed Pull's events to sink; call
// done when the pull ends, to flush and wait for the renderer. sink is safe
// for concurrent use and does nothing after done; done may be called more
// than once.
func terminalProgress(w io.Writer, every, stall time.Duration) (sink func(engine.Progress), done func()) {
	fd, _ := term.GetFdInfo(w)
	pr, pw := io.Pipe()
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		// The stream never carries errors, so this returns at EOF; make any
		// later write fail rather than block, should it return early.
		err := jsonmessage.DisplayJSONMessagesStream(pr, w, fd, true, nil)
		if err == nil {
			err = io.ErrClosedPipe
		}
		pr.CloseWithError(err)
	}()

	var (
		mu     sync.Mutex
		closed bool
		enc    = json.NewEncoder(pw)
	)
	send := func(m jsonmessage.JSONMessage) {
		mu.Lock()
		defer mu.Unlock()
		if !closed {
			_ = enc.Encode(m)
		}
	}
	meter := pull.NewMeter(every, stall, func(line string) {
		send(jsonmessage.JSONMessage{ID: "prepull", Status: line})
	})
	stopMeter := meter.Run()
	sink = func(p engine.Progress) {
		// The engine relays what the registry says: never to the terminal raw.
		m := jsonmessage.JSONMessage{ID: display.Text(p.Layer), Status: display.Text(p.Status)}
		if p.Layer != "" {
			m.Progress = &jsonmessage.JSONProgress{Current: p.Current, Total: p.Total}
		}
		send(m)
		meter.Update(p)
	}
	var once sync.Once
	done = func() {
		once.Do(func() {
			stopMeter()
			mu.Lock()
			closed = true
			pw.Close()
			mu.Unlock()
			<-finished
		})
	}
	return sink, done
}

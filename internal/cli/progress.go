package cli

import (
	"encoding/json"
	"io"
	"sync"

	"github.com/docker/docker/pkg/jsonmessage"
	"github.com/moby/term"

	"github.com/prepull/prepull/internal/display"
	"github.com/prepull/prepull/internal/engine"
)

// terminalProgress renders progress events on w, a terminal, the way the
// docker CLI does (one line per layer, updated in place), using Docker's own
// renderer. Feed Pull's events to sink; call done when the pull ends, to flush
// and wait for the renderer. sink is safe for concurrent use and does nothing
// after done; done may be called more than once.
func terminalProgress(w io.Writer) (sink func(engine.Progress), done func()) {
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
	sink = func(p engine.Progress) {
		// The engine relays what the registry says: never to the terminal raw.
		m := jsonmessage.JSONMessage{ID: display.Text(p.Layer), Status: display.Text(p.Status)}
		if p.Layer != "" {
			m.Progress = &jsonmessage.JSONProgress{Current: p.Current, Total: p.Total}
		}
		mu.Lock()
		defer mu.Unlock()
		if !closed {
			_ = enc.Encode(m)
		}
	}
	var once sync.Once
	done = func() {
		once.Do(func() {
			mu.Lock()
			closed = true
			pw.Close()
			mu.Unlock()
			<-finished
		})
	}
	return sink, done
}

package engine

import (
	"encoding/json"
	"io"
	"sync"

	"github.com/docker/docker/pkg/jsonmessage"
	"github.com/moby/term"
)

// TerminalProgress draws a pull's progress on a terminal the way the docker
// CLI does, one line per layer updated in place, with Docker's own
// renderer. It is safe for concurrent use.
type TerminalProgress struct {
	mu       sync.Mutex
	closed   bool
	enc      *json.Encoder
	pw       *io.PipeWriter
	finished chan struct{}
}

// NewTerminalProgress starts drawing on w, a terminal. What it is shown
// must be safe for a terminal already: the engine relays what the registry
// says.
func NewTerminalProgress(w io.Writer) *TerminalProgress {
	fd, _ := term.GetFdInfo(w)
	pr, pw := io.Pipe()
	t := &TerminalProgress{enc: json.NewEncoder(pw), pw: pw, finished: make(chan struct{})}
	go func() {
		defer close(t.finished)
		// The stream never carries errors, so this returns at EOF; make any
		// later write fail rather than block, should it return early.
		err := jsonmessage.DisplayJSONMessagesStream(pr, w, fd, true, nil)
		if err == nil {
			err = io.ErrClosedPipe
		}
		pr.CloseWithError(err)
	}()
	return t
}

// Show draws p: its layer's line, with a bar, or a line of its own when
// p.Layer is empty.
func (t *TerminalProgress) Show(p Progress) {
	m := jsonmessage.JSONMessage{ID: p.Layer, Status: p.Status}
	if p.Layer != "" {
		m.Progress = &jsonmessage.JSONProgress{Current: p.Current, Total: p.Total}
	}
	t.send(m)
}

// Line draws text on the line named id, updated in place, with no bar.
func (t *TerminalProgress) Line(id, text string) {
	t.send(jsonmessage.JSONMessage{ID: id, Status: text})
}

func (t *TerminalProgress) send(m jsonmessage.JSONMessage) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.closed {
		_ = t.enc.Encode(m)
	}
}

// Close flushes what was shown and waits for the renderer. Show and Line
// do nothing after it; a second Close does nothing.
func (t *TerminalProgress) Close() {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return
	}
	t.closed = true
	t.pw.Close()
	t.mu.Unlock()
	<-t.finished
}

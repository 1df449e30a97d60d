package remote

import (
	"bytes"
	"io"
	"strings"
	"sync"

	"github.com/prepull/prepull/internal/display"
)

// syncWriter serializes writes to w, so that lines of several hosts never
// mix.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// maxLine bounds the part of a line held back while waiting for its end;
// longer lines are passed on in pieces.
const maxLine = 64 << 10

// prefixWriter writes each line to out with prefix before it, in one Write,
// as soon as the line is complete, escaped with display.Text. It remembers
// the last non-empty line, its whitespace folded. A first line that starts
// with marker is kept rather than written.
type prefixWriter struct {
	out    io.Writer
	prefix string
	marker string

	mu     sync.Mutex
	buf    []byte
	last   string
	lines  int
	marked string // the rest of the marker line
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(b)
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			p.buf = append(p.buf, b...)
			if len(p.buf) >= maxLine {
				p.emit()
			}
			break
		}
		p.buf = append(p.buf, b[:i]...)
		b = b[i+1:]
		p.emit()
	}
	return n, nil
}

// Flush writes a last line that has no newline.
func (p *prefixWriter) Flush() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.buf) > 0 {
		p.emit()
	}
}

// Last returns the last non-empty line written.
func (p *prefixWriter) Last() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.last
}

// Marked returns what followed the marker on the first line, if it had one.
func (p *prefixWriter) Marked() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.marked
}

func (p *prefixWriter) emit() {
	line := bytes.TrimRight(p.buf, "\r")
	p.lines++
	if p.lines == 1 && p.marker != "" && bytes.HasPrefix(line, []byte(p.marker)) {
		p.marked = string(line[len(p.marker):])
		p.buf = p.buf[:0]
		return
	}
	if last := strings.Join(strings.Fields(string(line)), " "); last != "" {
		p.last = last
	}
	// The remote side may send anything: each tab-separated field (zap's
	// console lines) is escaped, so that no cursor move, title, clipboard
	// write, bidi override or lone CR reaches the terminal.
	fields := strings.Split(string(line), "\t")
	for i, f := range fields {
		fields[i] = display.Text(f)
	}
	p.out.Write([]byte(p.prefix + strings.Join(fields, "\t") + "\n")) // diagnostics: a failed write must not stop the run
	p.buf = p.buf[:0]
}

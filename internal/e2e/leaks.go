//go:build linux

package e2e

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"slices"
	"sync"
)

// SecretForms returns the password as it would show if it leaked: as is, in
// hex, and base64 in both alphabets at the three alignments a longer
// encoded text can put it in ("user:password" in Docker's config.json, a
// JSON login in an X-Registry-Auth header), cut to the characters that
// depend on the password alone.
func SecretForms(pw string) []string {
	forms := []string{pw, hex.EncodeToString([]byte(pw))}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
		for pad := range 3 {
			e := enc.EncodeToString(append(make([]byte, pad), pw...))
			start, end := (pad*8+5)/6, (pad+len(pw))*8/6
			forms = append(forms, e[start:end])
		}
	}
	return forms
}

// LeakFinder tells where the password shows.
type LeakFinder struct {
	Forms []string

	mu    sync.Mutex
	leaks []string // each once, in the order found
}

// Check records a leak when data holds a form of the password; where says
// what data is.
func (l *LeakFinder) Check(where string, data []byte) {
	for _, form := range l.Forms {
		if bytes.Contains(data, []byte(form)) {
			leak := fmt.Sprintf("%s holds the password (as %q)", where, form)
			l.mu.Lock()
			if !slices.Contains(l.leaks, leak) {
				l.leaks = append(l.leaks, leak)
			}
			l.mu.Unlock()
			return
		}
	}
}

func (l *LeakFinder) Found() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.leaks)
}

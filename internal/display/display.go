// Package display shows text that comes from outside prepull (registries,
// Docker Engine, proxies, paks and their file names) on a terminal, in log
// lines and in tables, so that none of it can drive the terminal or forge
// a line, while ordinary text, UTF-8 included, stays as it is.
package display

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

	"golang.org/x/text/width"
)

// Text returns s as safe to print: as it is when it is valid UTF-8 of
// printable characters (letters, marks, digits, punctuation, symbols and the
// ASCII space), otherwise quoted with Go escapes. So no control character
// (newline, lone CR, tab, ESC with its cursor moves, OSC titles and
// clipboard writes, C1 controls), no bidi override such as U+202E and no
// invalid byte reaches the output raw, and a quoted result cannot be taken
// for plain text. It never shortens s.
func Text(s string) string {
	if utf8.ValidString(s) && !strings.ContainsFunc(s, func(r rune) bool { return !strconv.IsPrint(r) }) {
		return s
	}
	return strconv.Quote(s)
}

// Width returns how many terminal columns s takes once printed as Text:
// two for East Asian wide and fullwidth characters, none for combining
// marks, one for the rest.
func Width(s string) int {
	s = Text(s)
	n := 0
	for _, r := range s {
		switch {
		case unicode.In(r, unicode.Mn, unicode.Me):
		case isWide(r):
			n += 2
		default:
			n++
		}
	}
	return n
}

func isWide(r rune) bool {
	switch width.LookupRune(r).Kind() {
	case width.EastAsianWide, width.EastAsianFullwidth:
		return true
	}
	return false
}

// ShortDigest returns ref with its sha256 digest cut to its first 12 hex
// digits, as tables show it ("harbor/x@sha256:3d2200f2d590"); any other
// text as it is.
func ShortDigest(ref string) string {
	const algo = "@sha256:"
	if i := strings.Index(ref, algo); i >= 0 && len(ref) > i+len(algo)+12 {
		return ref[:i+len(algo)+12]
	}
	return ref
}

// Cut returns s, as Text prints it, shortened to at most width terminal
// columns, its end replaced by "..." when it had to be cut.
func Cut(s string, width int) string {
	s = Text(s)
	if Width(s) <= width {
		return s
	}
	var b strings.Builder
	n := 0
	for _, r := range s {
		w := Width(string(r))
		if n+w > width-3 {
			break
		}
		b.WriteRune(r)
		n += w
	}
	return b.String() + "..."
}

// Table lays out rows in columns two spaces apart, aligned by the width
// their text takes on a terminal. Every cell is printed as Text, an empty
// one as "-".
type Table struct {
	// Fit, when positive, is the width a row should fit in: the last cell
	// of a longer row is cut (see Cut), down to 20 columns at least.
	Fit  int
	rows [][]string
}

// Row adds a row of cells.
func (t *Table) Row(cells ...string) {
	row := make([]string, len(cells))
	for i, c := range cells {
		if c == "" {
			c = "-"
		}
		row[i] = Text(c)
	}
	t.rows = append(t.rows, row)
}

// WriteTo writes the table to w, one line per row; the last cell of a row
// is not padded.
func (t *Table) WriteTo(w io.Writer) (int64, error) {
	var widths []int
	for _, row := range t.rows {
		for i, c := range row {
			if i == len(widths) {
				widths = append(widths, 0)
			}
			widths[i] = max(widths[i], Width(c))
		}
	}
	var b strings.Builder
	for _, row := range t.rows {
		if t.Fit > 0 && len(row) > 0 {
			used := 0
			for i := range row[:len(row)-1] {
				used += widths[i] + 2
			}
			row[len(row)-1] = Cut(row[len(row)-1], max(t.Fit-used, 20))
		}
		for i, c := range row {
			b.WriteString(c)
			if i < len(row)-1 {
				b.WriteString(strings.Repeat(" ", widths[i]-Width(c)+2))
			}
		}
		b.WriteByte('\n')
	}
	n, err := io.WriteString(w, b.String())
	return int64(n), err
}

// JSON writes v to w as indented JSON, as every --json output is written.
// See JSONWriter for what it escapes.
func JSON(w io.Writer, v any) error {
	enc := json.NewEncoder(JSONWriter(w))
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// JSONWriter returns a writer that passes JSON text on to w with every
// character that Text would escape and encoding/json or zap leave raw (bidi
// overrides, C1 and other non-printable characters beyond ASCII, DEL)
// written as a \u escape. Such characters can only stand inside JSON
// strings, where the escape means the same character: a program reads the
// same values, and a terminal shows no raw control character. Each Write
// must hold whole characters, as the JSON encoders' writes do.
func JSONWriter(w io.Writer) io.Writer { return jsonWriter{w} }

type jsonWriter struct{ w io.Writer }

func (j jsonWriter) Write(p []byte) (int, error) {
	safe := func(r rune) bool { return r < utf8.RuneSelf && r != 0x7f || strconv.IsPrint(r) && r != utf8.RuneError }
	if !strings.ContainsFunc(string(p), func(r rune) bool { return !safe(r) }) {
		return j.w.Write(p)
	}
	var b strings.Builder
	for _, r := range string(p) {
		switch {
		case safe(r):
			b.WriteRune(r)
		case r > 0xffff:
			r1, r2 := utf16.EncodeRune(r)
			fmt.Fprintf(&b, "\\u%04x\\u%04x", r1, r2)
		default:
			fmt.Fprintf(&b, "\\u%04x", r)
		}
	}
	if _, err := io.WriteString(j.w, b.String()); err != nil {
		return 0, err
	}
	return len(p), nil
}

// WithoutPath returns the error inside a *fs.PathError, which repeats the
// operation and the path, for a message that names the file already; any
// other error as it is. errors.Is still sees the cause (fs.ErrNotExist,
// fs.ErrPermission).
func WithoutPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// Package display shows text that comes from outside prepull (registries,
// Docker Engine, proxies, paks and their file names) on a terminal, in log
// lines and in tables, so that none of it can drive the terminal or forge
// a line, while ordinary text, UTF-8 included, stays as it is.
package display

import (
	"io"
	"strconv"
	"strings"
	"unicode"
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

// Table lays out rows in columns two spaces apart, aligned by the width
// their text takes on a terminal. Every cell is printed as Text, an empty
// one as "-".
type Table struct {
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

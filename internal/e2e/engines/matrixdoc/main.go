// Command matrixdoc writes the engine matrix of docs/compatibility.md from
// a run of TestEngineMatrix, read as go test -json output on standard
// input, or checks that the committed matrix says what the run did:
//
//	PREPULL_E2E=1 go test -json -run TestEngineMatrix ./internal/e2e/engines | go run ./internal/e2e/engines/matrixdoc -write docs/compatibility.md
//	PREPULL_E2E=1 go test -json ./internal/e2e/engines | go run ./internal/e2e/engines/matrixdoc -echo -check docs/compatibility.md
//
// Every word of the table comes from the run: the cases and what each
// checks, the columns (VERSION/STORE subtests), each cell's outcome as the
// cell logged it, and whether it passed. -check compares all of that; the
// engines' exact versions (a moving suite's change) are recorded under
// the table and not compared.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"
)

// The lines TestEngineMatrix logs (matrix_test.go).
const (
	caseLog    = "matrix case: "
	engineLog  = "matrix engine: "
	outcomeLog = "matrix outcome: "
)

const (
	testName     = "TestEngineMatrix"
	begin        = "<!-- begin engine matrix: written by internal/e2e/engines/matrixdoc from a run of TestEngineMatrix -->"
	end          = "<!-- end engine matrix -->"
	versionsLine = "The engines of the run that wrote this table"
)

// event is one line of go test -json.
type event struct {
	Time   time.Time
	Action string
	Test   string
	Output string
}

// run is what a run of TestEngineMatrix did.
type run struct {
	date     time.Time
	cases    []matrixCase
	columns  []string          // VERSION/STORE, in the order they ran
	versions map[string]string // column: what its engine said it is
	cells    map[string]*cell  // VERSION/STORE/CASE
}

type matrixCase struct{ name, doc string }

type cell struct {
	outcomes []string
	result   string // pass, fail or skip
}

func main() {
	write := flag.String("write", "", "rewrite the matrix in this Markdown file")
	check := flag.String("check", "", "fail unless the matrix in this Markdown file says what the run did")
	echo := flag.Bool("echo", false, "print the tests' output as it comes, as go test -v does")
	flag.Parse()
	if (*write == "") == (*check == "") {
		fmt.Fprintln(os.Stderr, "matrixdoc: give one of -write FILE or -check FILE, and go test -json output on standard input")
		os.Exit(2)
	}
	out := io.Discard
	if *echo {
		out = os.Stdout
	}
	r, err := read(os.Stdin, out)
	if err == nil {
		if *write != "" {
			err = writeDoc(*write, r)
		} else {
			err = checkDoc(*check, r)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "matrixdoc:", err)
		os.Exit(1)
	}
}

// read reads go test -json output, copying the tests' output to echo.
func read(in io.Reader, echo io.Writer) (*run, error) {
	r := &run{versions: map[string]string{}, cells: map[string]*cell{}}
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var e event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			// go test prints build failures as plain text.
			fmt.Fprintln(echo, sc.Text())
			continue
		}
		fmt.Fprint(echo, e.Output)
		if r.date.IsZero() {
			r.date = e.Time
		}
		r.add(e)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(r.cases) == 0 || len(r.columns) == 0 {
		return nil, fmt.Errorf("no %s cases or engines in the go test -json output on standard input", testName)
	}
	return r, nil
}

// add takes in what one event says of the matrix.
func (r *run) add(e event) {
	parts := strings.Split(e.Test, "/")
	if parts[0] != testName {
		return
	}
	_, logged, found := strings.Cut(e.Output, ": matrix ")
	logged = "matrix " + strings.TrimSpace(logged)
	switch {
	case len(parts) == 1 && found && strings.HasPrefix(logged, caseLog):
		name, doc, _ := strings.Cut(strings.TrimPrefix(logged, caseLog), ": ")
		r.cases = append(r.cases, matrixCase{name, doc})
	case len(parts) == 3 && e.Action == "run":
		r.columns = append(r.columns, parts[1]+"/"+parts[2])
	case len(parts) == 3 && found && strings.HasPrefix(logged, engineLog):
		r.versions[parts[1]+"/"+parts[2]] = strings.TrimPrefix(logged, engineLog)
	case len(parts) >= 4:
		c := r.cell(strings.Join(parts[:4], "/"))
		if found && strings.HasPrefix(logged, outcomeLog) {
			if o := strings.TrimPrefix(logged, outcomeLog); !slices.Contains(c.outcomes, o) {
				c.outcomes = append(c.outcomes, o)
			}
		}
		if len(parts) == 4 && (e.Action == "pass" || e.Action == "fail" || e.Action == "skip") {
			c.result = e.Action
		}
	}
}

func (r *run) cell(name string) *cell {
	if r.cells[name] == nil {
		r.cells[name] = &cell{}
	}
	return r.cells[name]
}

// table is the Markdown of the matrix, the engines' versions last.
func (r *run) table() string {
	var b strings.Builder
	b.WriteString("| case |")
	for _, col := range r.columns {
		b.WriteString(" " + strings.ReplaceAll(col, "/", " ") + " |")
	}
	b.WriteString("\n| --- |" + strings.Repeat(" --- |", len(r.columns)) + "\n")
	for _, c := range r.cases {
		fmt.Fprintf(&b, "| **%s**: %s |", c.name, c.doc)
		for _, col := range r.columns {
			name := testName + "/" + col + "/" + c.name
			fmt.Fprintf(&b, " %s: `%s` |", r.cell(name).words(), name)
		}
		b.WriteString("\n")
	}
	var versions []string
	for _, col := range r.columns {
		versions = append(versions, strings.ReplaceAll(col, "/", " ")+": "+r.versions[col])
	}
	fmt.Fprintf(&b, "\n%s (%s): %s.\n", versionsLine, r.date.UTC().Format("2006-01-02"), strings.Join(versions, "; "))
	return b.String()
}

// words is what a cell says: its outcomes, or that it did not pass.
func (c *cell) words() string {
	words := strings.Join(c.outcomes, ", ")
	switch {
	case c.result == "pass" && words != "":
		return words
	case c.result == "pass":
		return "passed"
	case c.result == "":
		return "not run"
	case words == "":
		return strings.ToUpper(c.result)
	}
	return strings.ToUpper(c.result) + " (" + words + ")"
}

// region returns the text of file before, in and after its matrix.
func region(file string) (before, in, after string, err error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return "", "", "", err
	}
	text := string(data)
	b, e := strings.Index(text, begin+"\n"), strings.Index(text, end)
	if b < 0 || e < b {
		return "", "", "", fmt.Errorf("%s has no lines %s and %s around its engine matrix", file, begin, end)
	}
	b += len(begin) + 1
	return text[:b], text[b:e], text[e:], nil
}

func writeDoc(file string, r *run) error {
	before, _, after, err := region(file)
	if err != nil {
		return err
	}
	return os.WriteFile(file, []byte(before+r.table()+after), 0o644)
}

// checkDoc compares the committed matrix with the run's, all but the line
// recording the engines' versions.
func checkDoc(file string, r *run) error {
	_, in, _, err := region(file)
	if err != nil {
		return err
	}
	committed, ran := withoutVersions(in), withoutVersions(r.table())
	if committed == ran {
		fmt.Printf("%s: the engine matrix says what this run did\n", file)
		return nil
	}
	var diff []string
	cl, rl := strings.Split(committed, "\n"), strings.Split(ran, "\n")
	for i := 0; i < max(len(cl), len(rl)); i++ {
		c, n := line(cl, i), line(rl, i)
		if c != n {
			diff = append(diff, "- "+c, "+ "+n)
		}
	}
	return fmt.Errorf("%s: the engine matrix differs from this run's (- committed, + this run; write it again with -write):\n%s", file, strings.Join(diff, "\n"))
}

func withoutVersions(table string) string {
	var keep []string
	for _, l := range strings.Split(table, "\n") {
		if !strings.HasPrefix(l, versionsLine) {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

func line(lines []string, i int) string {
	if i < len(lines) {
		return lines[i]
	}
	return ""
}

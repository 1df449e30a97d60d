package cli

import (
	"bytes"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"

	"github.com/prepull/prepull/internal/golden"
)

// regenerate is what the generated documents say makes them again.
const regenerate = "go test ./internal/cli -run TestDocs -update"

// TestDocs checks the documents made from the code against it: the exit
// code tables of the README and docs/exit-codes.md, the command reference
// in docs/cli and the man pages in docs/man. Each is made again into a
// temporary folder and compared; `go test ./internal/cli -run TestDocs
// -update` writes them.
func TestDocs(t *testing.T) {
	t.Run("exit codes", func(t *testing.T) {
		golden.Region(t, "../../README.md", "exit codes", exitCodesMarkdown(false))
		golden.Region(t, "../../docs/exit-codes.md", "exit codes", exitCodesMarkdown(true))
	})
	t.Run("command reference", func(t *testing.T) {
		dir := t.TempDir()
		if err := writeCommandReference(dir); err != nil {
			t.Fatal(err)
		}
		golden.Dir(t, "../../docs/cli", dir)
	})
	t.Run("links", checkLinks)
	t.Run("man pages", func(t *testing.T) {
		dir := t.TempDir()
		if err := writeManPages(dir); err != nil {
			t.Fatal(err)
		}
		golden.Dir(t, "../../docs/man", dir)
	})
}

// forEachCommand calls fn with each command the documents describe, the
// root first, each in a tree of its own whose help ran once: a command's
// help hides the global flags that do not apply to it (withoutFlags), on
// flags its whole tree shares.
func forEachCommand(fn func(c *cobra.Command) error) error {
	var paths [][]string
	var walk func(c *cobra.Command, path []string)
	walk = func(c *cobra.Command, path []string) {
		paths = append(paths, path)
		for _, sub := range c.Commands() {
			if sub.IsAvailableCommand() {
				walk(sub, append(append([]string(nil), path...), sub.Name()))
			}
		}
	}
	walk(docsRoot(), nil)
	for _, path := range paths {
		c, _, err := docsRoot().Find(path)
		if err != nil {
			return err
		}
		c.SetOut(io.Discard)
		c.HelpFunc()(c, nil)
		if err := fn(c); err != nil {
			return err
		}
	}
	return nil
}

// docsRoot is the command tree the documents describe, with the
// completion command that cobra adds when prepull runs.
func docsRoot() *cobra.Command {
	root := newRootCommand(&globals{})
	root.InitDefaultCompletionCmd()
	var disable func(c *cobra.Command)
	disable = func(c *cobra.Command) {
		c.DisableAutoGenTag = true
		for _, sub := range c.Commands() {
			disable(sub)
		}
	}
	disable(root)
	return root
}

// writeCommandReference writes one Markdown page per command into dir, as
// crane's docs/ are, and an index, README.md.
func writeCommandReference(dir string) error {
	var index strings.Builder
	index.WriteString("# Command reference\n\n")
	index.WriteString("One page per command, made from prepull's command line by\n`" + regenerate + "`,\n")
	index.WriteString("which the test command checks; each is also a man page in [../man](../man).\n\n")
	err := forEachCommand(func(c *cobra.Command) error {
		name := strings.ReplaceAll(c.CommandPath(), " ", "_") + ".md"
		fmt.Fprintf(&index, "- [%s](%s): %s\n", c.CommandPath(), name, c.Short)
		var page strings.Builder
		page.WriteString("<!-- Made from prepull's command line by `" + regenerate + "`: edit the command, not this page. -->\n\n")
		if err := doc.GenMarkdownCustom(c, &page, func(s string) string { return s }); err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, name), []byte(page.String()), 0o644)
	})
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "README.md"), []byte(index.String()), 0o644)
}

// manDate is the date in a man page's title line: it would change every
// month and tell nothing, so the pages carry none.
var manDate = regexp.MustCompile(`(?m)^(\.TH "[^"]*" "[^"]*") "[^"]*"`)

// writeManPages writes one man page (section 1) per command into dir.
func writeManPages(dir string) error {
	return forEachCommand(func(c *cobra.Command) error {
		var page bytes.Buffer
		page.WriteString(`.\" Made from prepull's command line by ` + regenerate + "\n")
		header := &doc.GenManHeader{Source: "prepull", Manual: "prepull manual"}
		if err := doc.GenMan(c, header, &page); err != nil {
			return err
		}
		name := strings.ReplaceAll(c.CommandPath(), " ", "-") + ".1"
		return os.WriteFile(filepath.Join(dir, name), manDate.ReplaceAll(page.Bytes(), []byte(`$1 ""`)), 0o644)
	})
}

// TestExitCodesTableIsComplete checks that every ExitCode constant of the
// package has its row in exitCodes, once.
func TestExitCodesTableIsComplete(t *testing.T) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "exitcodes.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	rows := make(map[ExitCode]int)
	for _, e := range exitCodes {
		rows[e.code]++
	}
	consts := 0
	ast.Inspect(f, func(n ast.Node) bool {
		v, ok := n.(*ast.ValueSpec)
		if !ok || v.Type == nil {
			return true
		}
		if id, ok := v.Type.(*ast.Ident); !ok || id.Name != "ExitCode" {
			return true
		}
		for _, name := range v.Names {
			if name.Obj == nil || name.Obj.Kind != ast.Con {
				continue
			}
			consts++
			lit, ok := v.Values[0].(*ast.BasicLit)
			if !ok {
				t.Errorf("%s is not a number", name.Name)
				continue
			}
			var code int
			if _, err := fmt.Sscan(lit.Value, &code); err != nil {
				t.Fatal(err)
			}
			if rows[ExitCode(code)] != 1 {
				t.Errorf("%s (%d) has %d rows in exitCodes, want 1", name.Name, code, rows[ExitCode(code)])
			}
		}
		return true
	})
	if consts != len(exitCodes) {
		t.Errorf("%d ExitCode constants, %d rows in exitCodes", consts, len(exitCodes))
	}
}

// mdLink is a Markdown link's target.
var mdLink = regexp.MustCompile(`\]\(([^)\s]+)\)`)

// checkLinks checks that every relative link in the repository's Markdown
// files leads to a file that exists and, with a #fragment, to one of its
// headings: pages move, and links must follow.
func checkLinks(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	err = filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && strings.HasPrefix(d.Name(), ".") && path != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".md") {
			return nil
		}
		text, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		for _, m := range mdLink.FindAllStringSubmatch(string(text), -1) {
			target, fragment, _ := strings.Cut(m[1], "#")
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			dest := path
			if target != "" {
				dest = filepath.Join(filepath.Dir(path), target)
			}
			if _, err := os.Stat(dest); err != nil {
				t.Errorf("%s: link %s: no such file", rel, m[1])
				continue
			}
			if fragment != "" && strings.HasSuffix(dest, ".md") && !hasHeading(t, dest, fragment) {
				t.Errorf("%s: link %s: no such heading", rel, m[1])
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// hasHeading tells whether the Markdown file has a heading whose anchor, as
// GitHub makes it, is fragment.
func hasHeading(t *testing.T, file, fragment string) bool {
	text, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(text), "\n") {
		title, ok := strings.CutPrefix(strings.TrimLeft(line, "#"), " ")
		if !ok || !strings.HasPrefix(line, "#") {
			continue
		}
		anchor := strings.Map(func(r rune) rune {
			switch {
			case r == ' ':
				return '-'
			case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
				return unicode.ToLower(r)
			}
			return -1
		}, strings.TrimSpace(title))
		if anchor == fragment {
			return true
		}
	}
	return false
}

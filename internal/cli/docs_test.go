package cli

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"testing"

	"github.com/prepull/prepull/internal/golden"
)

// TestDocs checks the documents made from the code against it: the exit
// code tables of the README and docs/exit-codes.md. Regenerate them with
// `go test ./internal/cli -run TestDocs -update`.
func TestDocs(t *testing.T) {
	t.Run("exit codes", func(t *testing.T) {
		golden.Region(t, "../../README.md", "exit codes", exitCodesMarkdown(false))
		golden.Region(t, "../../docs/exit-codes.md", "exit codes", exitCodesMarkdown(true))
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

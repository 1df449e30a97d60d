// Package golden compares output that scripts rely on with golden files in
// a test's testdata folder; `go test -update` rewrites them.
package golden

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// testdata is the package's testdata folder, taken before any test changes
// the working directory.
var testdata = func() string {
	wd, err := os.Getwd()
	if err != nil {
		panic(err)
	}
	return filepath.Join(wd, "testdata")
}()

// Check fails t unless got equals testdata/name, which -update rewrites.
func Check(t testing.TB, name, got string) {
	t.Helper()
	path := filepath.Join(testdata, name)
	if *update {
		if err := os.MkdirAll(testdata, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test with -update to create it)", err)
	}
	if got != string(want) {
		path, _ = filepath.Rel(filepath.Dir(testdata), path)
		t.Errorf("output differs from %s (go test -update rewrites it):\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}

// Region fails t unless the part of the file at path (relative to the
// package's folder) between the lines
//
//	<!-- begin NAME: ... -->
//	<!-- end NAME -->
//
// equals got; -update rewrites that part and leaves the rest of the file
// as it is. It keeps generated tables inside hand-written documents true.
func Region(t testing.TB, path, name, got string) {
	t.Helper()
	path = inPackage(path)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	begin, end := "<!-- begin "+name+":", "<!-- end "+name+" -->"
	b := strings.Index(text, begin)
	e := strings.Index(text, end)
	if b < 0 || e < b {
		t.Fatalf("%s has no %s ... -->, %s pair around its generated %s", path, begin, end, name)
	}
	b += strings.Index(text[b:], "\n") + 1
	if *update {
		text = text[:b] + got + text[e:]
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if text[b:e] != got {
		t.Errorf("%s: its %s differs from what is generated now (go test -update rewrites it):\nthe file has:\n%s\ngenerated:\n%s", path, name, text[b:e], got)
	}
}

// Dir fails t unless the folder want (relative to the package's folder)
// holds exactly the files of the folder got, with the same contents;
// -update makes it so, removing files got does not have. It keeps folders
// of generated documents true.
func Dir(t testing.TB, want, got string) {
	t.Helper()
	want = inPackage(want)
	gotFiles, err := readDir(got)
	if err != nil {
		t.Fatal(err)
	}
	wantFiles, err := readDir(want)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	if *update {
		if err := os.MkdirAll(want, 0o755); err != nil {
			t.Fatal(err)
		}
		for name := range wantFiles {
			if _, ok := gotFiles[name]; !ok {
				if err := os.Remove(filepath.Join(want, name)); err != nil {
					t.Fatal(err)
				}
			}
		}
		for name, data := range gotFiles {
			if err := os.WriteFile(filepath.Join(want, name), data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return
	}
	for name, data := range gotFiles {
		w, ok := wantFiles[name]
		switch {
		case !ok:
			t.Errorf("%s: %s is missing (go test -update writes it)", want, name)
		case string(w) != string(data):
			t.Errorf("%s: %s differs from what is generated now (go test -update rewrites it)", want, name)
		}
	}
	for name := range wantFiles {
		if _, ok := gotFiles[name]; !ok {
			t.Errorf("%s: %s is no longer generated (go test -update removes it)", want, name)
		}
	}
}

// readDir reads every file directly in dir.
func readDir(dir string) (map[string][]byte, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	files := make(map[string][]byte)
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		files[e.Name()] = data
	}
	return files, nil
}

// inPackage resolves path against the package's folder, which a test may
// have left for another working directory.
func inPackage(path string) string {
	if filepath.IsAbs(path) {
		return path
	}
	return filepath.Join(filepath.Dir(testdata), path)
}

package pak_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/prepull/prepull/internal/pak"
	"github.com/prepull/prepull/internal/pak/paktest"
)

// TestReadRefusesTwoReadings builds hostile adapter archives that two ZIP
// readers could read differently, one by its local headers (a streaming
// reader), the other by its central directory (unzip, VCF Operations), or
// whose member names unzip extracts to other paths than prepull reads: each
// is refused in the same words whether the archive is stored in the pak,
// deflated in it, or given on its own.
func TestReadRefusesTwoReadings(t *testing.T) {
	good := paktest.Pak{Registry: paktest.Registry}.Conf()
	evil := paktest.Pak{Registry: "evil.example.com"}.Conf()
	cf := func(name string, data []byte) rawEntry { return rawEntry{name: name, data: data, method: 8} }
	tests := []struct {
		name    string
		entries []rawEntry
		want    string // after the file and adapter.zip
	}{
		{"two confs of one name, deflated members",
			[]rawEntry{{name: "MyAdapter.conf", data: evil, method: 8}, {name: "MyAdapter.conf", data: good, method: 8}},
			`two members named "MyAdapter.conf"`},
		{"two confs of one name, stored members",
			[]rawEntry{{name: "MyAdapter.conf", data: evil}, {name: "MyAdapter.conf", data: good}},
			`two members named "MyAdapter.conf"`},
		{"two confs of one name, after other members",
			[]rawEntry{{name: "MyAdapter/conf/describe.xml", data: []byte("<x/>"), method: 8}, {name: "MyAdapter.conf", data: good, method: 8}, {name: "eula.txt", method: 8}, {name: "MyAdapter.conf", data: evil, method: 8}},
			`two members named "MyAdapter.conf"`},
		{"the central directory lists one member twice",
			[]rawEntry{{name: "MyAdapter.conf", data: good, method: 8, cdTwice: true}},
			`two members named "MyAdapter.conf"`},
		{"a local header names another member than the central directory",
			[]rawEntry{{name: "MyAdapter.conf", data: evil, method: 8, cdName: "Other.conf"}, {name: "Other.conf", data: good, method: 8, cdName: "MyAdapter.conf"}},
			`Other.conf: the central directory names it "Other.conf", its local header "MyAdapter.conf": readers would disagree on which member it is`},
		{"a local header the central directory does not list",
			[]rawEntry{{name: "MyAdapter.conf", data: evil, method: 8, hidden: true}, {name: "MyAdapter.conf", data: good, method: 8}},
			"MyAdapter.conf: has a local header at offset 0 but is not in the central directory"},
		{"the methods disagree",
			[]rawEntry{{name: "MyAdapter.conf", data: good, method: 8, cdMethod: 1}},
			"MyAdapter.conf: the central directory says method 0 (stored), its local header 8 (deflated)"},
		{"the sizes disagree",
			[]rawEntry{{name: "MyAdapter.conf", data: good, method: 8, cdSize: 99}},
			"MyAdapter.conf: the central directory says 99 bytes"},
		{"the sizes of a data descriptor disagree",
			[]rawEntry{{name: "junk", data: []byte("junk junk junk"), method: 8, descriptor: true, cdSize: 5}, {name: "MyAdapter.conf", data: good, method: 8}},
			"junk: the central directory says 5 bytes"},
		// Names unzip -o extracts to another path than prepull reads: of
		// two members naming one path it extracts the last.
		{"./ beside the .conf", []rawEntry{cf("MyAdapter.conf", good), cf("./MyAdapter.conf", evil)},
			`two members named "MyAdapter.conf" and "./MyAdapter.conf", one path once extracted`},
		{"./ before the .conf", []rawEntry{cf("./MyAdapter.conf", evil), cf("MyAdapter.conf", good)},
			`two members named "./MyAdapter.conf" and "MyAdapter.conf"`},
		{"a .. segment back to the .conf", []rawEntry{cf("MyAdapter.conf", good), cf("lib/../MyAdapter.conf", evil)},
			`two members named "MyAdapter.conf" and "lib/../MyAdapter.conf"`},
		{"a . segment", []rawEntry{cf("lib/a.jar", nil), cf("lib/./a.jar", nil), cf("MyAdapter.conf", good)},
			`two members named "lib/a.jar" and "lib/./a.jar"`},
		{"a folder entry of the .conf's name", []rawEntry{cf("MyAdapter.conf", good), {name: "MyAdapter.conf/"}},
			`two members named "MyAdapter.conf" and "MyAdapter.conf/"`},
		{"a backslash", []rawEntry{cf("MyAdapter.conf", good), cf(`lib\..\MyAdapter.conf`, evil)},
			`two members named "MyAdapter.conf" and "lib\\..\\MyAdapter.conf"`},
		{"an absolute name", []rawEntry{cf("/etc/cron.d/x", nil), cf("MyAdapter.conf", good)},
			`/etc/cron.d/x: member name starts with "/": only plain relative paths are accepted`},
		{"a leading ./", []rawEntry{cf("./lib/a.jar", nil), cf("MyAdapter.conf", good)},
			`./lib/a.jar: member name starts with "./"`},
		{"a leading ../", []rawEntry{cf("../../etc/x", nil), cf("MyAdapter.conf", good)},
			`../../etc/x: member name holds a ".." path component`},
		{"a .. segment", []rawEntry{cf("lib/../../x", nil), cf("MyAdapter.conf", good)},
			`lib/../../x: member name holds a ".." path component`},
		{"//", []rawEntry{cf("lib//a.jar", nil), cf("MyAdapter.conf", good)},
			`lib//a.jar: member name holds "//"`},
		{"a lone backslash", []rawEntry{cf(`lib\a.jar`, nil), cf("MyAdapter.conf", good)},
			`lib\a.jar: member name holds a backslash`},
		{"a NUL", []rawEntry{cf("MyAdapter.conf\x00.txt", evil), cf("MyAdapter.conf", good)},
			`"MyAdapter.conf\x00.txt": member name holds a NUL byte`},
	}
	for _, tt := range tests {
		z := rawZip(tt.entries...)
		for _, form := range []struct {
			name, prefix string
			data         []byte
		}{
			{"deflated", "in: adapter.zip: ", paktest.Pak{RawAdapterZip: z}.Bytes()},
			{"stored", "in: adapter.zip: ", paktest.Pak{RawAdapterZip: z, StoreAdapterZip: true}.Bytes()},
			{"on its own", "in: ", z},
		} {
			t.Run(tt.name+"/"+form.name, func(t *testing.T) {
				_, err := readBytes("in", form.data)
				if err == nil || !errors.Is(err, pak.ErrInvalid) || !strings.HasPrefix(err.Error(), form.prefix+tt.want) {
					t.Fatalf("Read error %v, want %q", err, form.prefix+tt.want)
				}
			})
		}
	}

	// Data after the end record: a second end record there would point
	// readers that search from the end at another central directory.
	z := rawZip(rawEntry{name: "MyAdapter.conf", data: good, method: 8})
	z = append(z, z[len(z)-22:]...)
	for name, data := range map[string][]byte{"deflated": paktest.Pak{RawAdapterZip: z}.Bytes(), "stored": paktest.Pak{RawAdapterZip: z, StoreAdapterZip: true}.Bytes()} {
		_, err := readBytes("in", data)
		if want := "in: adapter.zip: data after its end record"; err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("%s: Read error %v, want %q", name, err, want)
		}
	}
	// The end record names another central directory.
	z = rawZip(rawEntry{name: "MyAdapter.conf", data: good, method: 8})
	z[len(z)-22+10]++ // the entry count
	_, err := readBytes("in", paktest.Pak{RawAdapterZip: z}.Bytes())
	if want := "in: adapter.zip: the end record describes another central directory"; err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("Read error %v, want %q", err, want)
	}
}

package pak_test

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/distribution/reference"

	"github.com/prepull/prepull/internal/pak"
	"github.com/prepull/prepull/internal/pak/paktest"
)

// TestMain caps the minimization of new fuzz inputs at one second unless
// -test.fuzzminimizetime is given. Minimizing is quadratic in the input's
// length, and ZIP inputs of a few KiB would otherwise spend the whole
// -fuzztime minimizing instead of fuzzing.
func TestMain(m *testing.M) {
	flag.Parse()
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "test.fuzzminimizetime" })
	if !set {
		if err := flag.Set("test.fuzzminimizetime", "1s"); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
	}
	os.Exit(m.Run())
}

// fuzzSeeds are small inputs of every form, good and broken.
func fuzzSeeds() [][]byte {
	c := paktest.Pak{Registry: paktest.Registry}.Conf()
	paks := []paktest.Pak{
		{Registry: paktest.Registry},
		{},
		{Registry: "harbor.example.com:8443", Adapter3: true, CRLF: true, HTTP: true},
		{Registry: "docker.io", Repository: "/myorg/a"},
		{Classic: true},
		{Registry: paktest.Registry, StoreAdapterZip: true},
		{ConfName: "Other.conf", Inner: []paktest.Member{{Name: "Third.conf", Data: c}}},
		{Inner: []paktest.Member{{Name: "a.bin", Data: []byte("aaaaaaaaaa"), Descriptor: true}, {Name: "b/", Store: true}}},
		{RawAdapterZip: rawZip(
			rawEntry{name: "junk", data: []byte("junk junk junk"), method: 8, descriptor: true, noSig: true},
			rawEntry{name: "j64", data: []byte("zip64"), method: 8, descriptor: true, zip64: true},
			rawEntry{name: "MyAdapter_adapter3.conf", data: c, method: 0})},
		// Archives two readers could read differently, refused.
		{RawAdapterZip: rawZip(rawEntry{name: "MyAdapter.conf", data: c, method: 8}, rawEntry{name: "MyAdapter.conf", data: c, method: 8})},
		{RawAdapterZip: rawZip(rawEntry{name: "MyAdapter.conf", data: c, method: 8, cdName: "Other.conf", cdSize: 1, cdMethod: 1})},
		{RawAdapterZip: rawZip(rawEntry{name: "MyAdapter.conf", data: c, method: 8, hidden: true}, rawEntry{name: "x", method: 0, cdTwice: true})},
	}
	var seeds [][]byte
	for _, p := range paks {
		seeds = append(seeds, p.Bytes(), p.AdapterZip(), p.Conf())
	}
	return append(seeds, nil, []byte("PK\x03\x04"), []byte("PK\x05\x06"), zipOf("manifest.txt", `{"adapters":["adapter.zip"],"adapter_kinds":["A"]}`))
}

// FuzzRead reads arbitrary input as a pak, an adapter.zip or a .conf. It must
// never panic, must fail with an *Error wrapping ErrInvalid, and what it
// reads must resolve to a valid reference.
func FuzzRead(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		// No clock: what bounds Read's work is its size caps, which the bad
		// input tests check one by one (internal/e2e/security).
		img, err := pak.Read("fuzz.pak", bytes.NewReader(data), int64(len(data)))
		if err != nil {
			var pe *pak.Error
			if !errors.As(err, &pe) || pe.File != "fuzz.pak" || !errors.Is(err, pak.ErrInvalid) {
				t.Fatalf("error %q is not a *pak.Error wrapping ErrInvalid", err)
			}
			if strings.ContainsAny(err.Error(), "\n\r\x00\x1b") {
				t.Fatalf("error %q holds raw control characters", err)
			}
			return
		}
		checkImage(t, img)
	})
}

// FuzzParseConf parses arbitrary .conf text. What it accepts must resolve to
// a valid reference.
func FuzzParseConf(f *testing.F) {
	for _, p := range []paktest.Pak{{Registry: paktest.Registry}, {CRLF: true, HTTP: true}, {Registry: "localhost:5000", Repository: "/a/b_c"}} {
		f.Add(p.Conf())
	}
	f.Add([]byte("# x\n\n KINDKEY = A \nREPOSITORY=a\nDIGEST=" + paktest.Digest))
	f.Add([]byte("REGISTRY=[::1]:5000\nREPOSITORY=/a\nDIGEST=" + paktest.Digest + "\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := pak.ParseConf(data)
		if err != nil {
			if !errors.Is(err, pak.ErrInvalid) {
				t.Fatalf("error %q does not wrap ErrInvalid", err)
			}
			if strings.ContainsAny(err.Error(), "\n\r\x00\x1b") {
				t.Fatalf("error %q holds raw control characters", err)
			}
			return
		}
		checkImage(t, pak.Image{File: "fuzz", Format: pak.FormatConf, AdapterKind: c.KindKey, Registry: c.Registry, Repository: c.Repository, Digest: c.Digest})
	})
}

// checkImage checks that an image read without error resolves to a
// reference that says exactly what the image says.
func checkImage(t *testing.T, img pak.Image) {
	t.Helper()
	target, err := img.Resolve("registry.example.com")
	if err != nil {
		t.Fatalf("read %+v but Resolve failed: %v", img, err)
	}
	if strings.ContainsAny(target.Reference, " \t\r\n;$`'\"\\|&<>(){}") {
		t.Fatalf("reference %q holds shell or space characters", target.Reference)
	}
	named, err := reference.ParseNormalizedNamed(target.Reference)
	if err != nil {
		t.Fatalf("reference %q does not parse: %v", target.Reference, err)
	}
	if c, ok := named.(reference.Canonical); !ok || c.Digest().String() != img.Digest {
		t.Fatalf("reference %q does not carry digest %q", target.Reference, img.Digest)
	}
}

// Command fuzzcorpus writes the committed seed corpus of internal/pak's
// fuzz tests, FuzzRead and FuzzParseConf, under internal/pak/testdata/fuzz.
// Run it from the repository's top folder:
//
//	go run ./scripts/fuzzcorpus
//
// The seeds are paks, adapter archives and .conf files of every SDK era
// made with paktest, the real pak in testdata, and broken ones that reach
// the reader's limits and refusals. Files it did not write, such as failing
// inputs the fuzzer saved, are left alone.
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/prepull/prepull/internal/pak/paktest"
)

// maxCorpusSize bounds the committed corpus, all files together.
const maxCorpusSize = 200 << 10

// corpusEntry is one named input of a committed seed corpus.
type corpusEntry struct {
	name string
	data []byte
}

// readCorpus returns the seed corpus of FuzzRead: paks, adapter archives and
// .conf files of every SDK era made with paktest, the real pak in testdata,
// and broken ones that reach the reader's limits and refusals.
func readCorpus() ([]corpusEntry, error) {
	real, err := os.ReadFile(filepath.Join(pakDir, "testdata", "PyAdapter_2.1.0.pak"))
	if err != nil {
		return nil, err
	}
	current := paktest.Pak{Registry: paktest.Registry}
	adapter3 := paktest.Pak{Registry: "harbor.example.com:8443", Adapter3: true, CRLF: true, HTTP: true}
	good := current.Bytes()
	return []corpusEntry{
		{"pak-current", good},
		{"pak-no-registry", paktest.Pak{}.Bytes()},
		{"pak-adapter3-crlf-port", adapter3.Bytes()},
		{"pak-stored-adapter-zip", paktest.Pak{Registry: paktest.Registry, StoreAdapterZip: true}.Bytes()},
		{"pak-data-descriptors", paktest.Pak{Registry: paktest.Registry,
			Inner: []paktest.Member{{Name: "a.bin", Data: []byte("aaaaaaaaaa"), Descriptor: true}, {Name: "b/", Store: true}}}.Bytes()},
		{"pak-classic", paktest.Pak{Classic: true}.Bytes()},
		{"pak-0.4.0-docker-hub-namespace", paktest.Pak{Release: paktest.Release040, From: "myteam/adapter"}.Bytes()},
		{"pak-1.3.1-localhost-mangled", paktest.Pak{Release: paktest.Release131, From: "localhost:5000/team/app"}.Bytes()},
		{"pak-real-PyAdapter", real},
		{"pak-claims-4GiB", paktest.Pak{Registry: paktest.Registry, ClaimAdapterZipSize: 4 << 30}.Bytes()},
		{"pak-bad-digest", paktest.Pak{Registry: paktest.Registry, Digest: "sha256:not-a-digest"}.Bytes()},
		{"pak-truncated", good[:len(good)/2]},
		{"adapter-zip-current", current.AdapterZip()},
		{"adapter-zip-adapter3", adapter3.AdapterZip()},
		{"conf-current", current.Conf()},
		{"conf-adapter3-crlf-port", adapter3.Conf()},
		{"zip-signature-only", []byte("PK\x03\x04")},
		{"zip-empty", []byte("PK\x05\x06" + strings.Repeat("\x00", 18))},
	}, nil
}

// confCorpus returns the seed corpus of FuzzParseConf: .conf files as the
// SDK writes them, as people edit them, and as they go wrong.
func confCorpus() []corpusEntry {
	conf := func(p paktest.Pak) []byte { return p.Conf() }
	digest := paktest.Digest
	return []corpusEntry{
		{"current", conf(paktest.Pak{Registry: paktest.Registry})},
		{"no-registry", conf(paktest.Pak{})},
		{"crlf-http", conf(paktest.Pak{CRLF: true, HTTP: true})},
		{"adapter3-port", conf(paktest.Pak{Registry: "harbor.example.com:8443", Adapter3: true})},
		{"docker-hub", conf(paktest.Pak{Registry: "docker.io", Repository: "/myorg/a"})},
		{"alpha", conf(paktest.Pak{Release: paktest.ReleaseAlpha, Registry: paktest.Registry})},
		{"docker-hub-namespace-0.x", conf(paktest.Pak{Release: paktest.Release051, From: "myteam/adapter"})},
		{"docker-hub-1.x", conf(paktest.Pak{Release: paktest.Release120, From: "myteam/adapter"})},
		{"localhost-mangled-1.x", conf(paktest.Pak{Release: paktest.Release131, From: "localhost:5000/team/app"})},
		{"localhost-nested-path", conf(paktest.Pak{Registry: "localhost:5000", Repository: "/a/b_c/d-e.f"})},
		{"ipv6", []byte("REGISTRY=[::1]:5000\nREPOSITORY=/a\nDIGEST=" + digest + "\r\n")},
		{"hand-edited", []byte("\ufeff# edited by hand\r\n\r\n  KINDKEY = MyAdapter\r\n  REGISTRY = harbor.example.com  \r\n" +
			"REPOSITORY=/my-project/myadapter\r\n# DIGEST=sha256:old\r\nDIGEST = " + digest + "\r\n")},
		{"repeated-key", []byte("REPOSITORY=a\nREPOSITORY=b\nDIGEST=" + digest + "\n")},
		{"injection", []byte("REGISTRY=harbor.example.com;id\nREPOSITORY=/a/$(id)/../b@x\nDIGEST=" + digest + " x\n")},
		{"upper-case", []byte("REPOSITORY=/My/Adapter\nDIGEST=SHA256:" + strings.ToUpper(digest[7:]) + "\n")},
		{"nul-byte", []byte("REPOSITORY=/a\x00\nDIGEST=" + digest + "\n")},
		{"invalid-utf8", []byte("REPOSITORY=/a\xff\xfe\nDIGEST=" + digest + "\n")},
		{"long-line", []byte("# " + strings.Repeat("x", 4200) + "\nREPOSITORY=/a\nDIGEST=" + digest + "\n")},
		{"not-key-value", []byte("the-robot-password\n")},
	}
}

// pakDir is internal/pak, whose fuzz tests the corpus is for.
var pakDir = filepath.Join("internal", "pak")

func main() {
	if err := write(); err != nil {
		fmt.Fprintln(os.Stderr, "fuzzcorpus:", err)
		os.Exit(1)
	}
}

// write writes the seed corpora of FuzzRead and FuzzParseConf to
// internal/pak/testdata/fuzz, in Go's corpus file format; go test runs
// every file there as a seed, with or without -fuzz.
func write() error {
	reads, err := readCorpus()
	if err != nil {
		return err
	}
	total := 0
	for target, entries := range map[string][]corpusEntry{"FuzzRead": reads, "FuzzParseConf": confCorpus()} {
		dir := filepath.Join(pakDir, "testdata", "fuzz", target)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		for _, e := range entries {
			data := fmt.Appendf(nil, "go test fuzz v1\n[]byte(%q)\n", e.data)
			if err := os.WriteFile(filepath.Join(dir, e.name), data, 0o644); err != nil {
				return err
			}
			total += len(data)
		}
	}
	if total > maxCorpusSize {
		return fmt.Errorf("the corpus takes %d bytes, over the %d allowed: keep it small", total, maxCorpusSize)
	}
	fmt.Printf("wrote %d bytes of seed corpus under %s\n", total, filepath.Join(pakDir, "testdata", "fuzz"))
	return nil
}

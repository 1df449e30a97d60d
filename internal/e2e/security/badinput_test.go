//go:build linux

package security

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/prepull/prepull/internal/e2e"
	"github.com/prepull/prepull/internal/pak/paktest"
	"github.com/prepull/prepull/internal/testenv"
)

// The resource bounds every bad input must stay within, per prepull run.
// They are bounds, not benchmarks: a run takes milliseconds to a fraction
// of a second of CPU, and 11 to 55 MiB. CPU time, not wall time: it is the
// work the input made, which a loaded machine does not stretch.
const (
	badInputMaxCPU = 5 * time.Second
	badInputMaxRSS = 100 << 20
)

// badInput is one input that names no pullable image. make writes it into
// dir and returns the path to give prepull; want is a part of the error
// prepull must print besides the path.
type badInput struct {
	name string
	make func(t *testing.T, dir string) string
	want string
}

// measuredRun is a finished prepull process with its CPU time (user and
// system) and peak resident memory.
type measuredRun struct {
	e2e.Run
	cpu    time.Duration
	maxRSS int64 // bytes
}

// rssWrapSource is a program that runs a command with its own standard
// streams, waits for it and writes "EXIT MAXRSS_KIB CPU_NS" to the file
// named by its first argument. Memory is measured through it rather than
// from the test: os/exec starts children with vfork, and Linux then counts
// the parent's peak memory, the test's own, into the child's ru_maxrss.
// Started from this small program, a child's peak is its own.
const rssWrapSource = `package main

import (
	"fmt"
	"os"
	"os/exec"
	"syscall"
)

func main() {
	cmd := exec.Command(os.Args[2], os.Args[3:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "rsswrap:", err)
		os.Exit(125)
	}
	cmd.Wait()
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	cpu := cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	result := fmt.Sprintf("%d %d %d\n", cmd.ProcessState.ExitCode(), ru.Maxrss, cpu.Nanoseconds())
	if err := os.WriteFile(os.Args[1], []byte(result), 0o600); err != nil {
		fmt.Fprintln(os.Stderr, "rsswrap:", err)
		os.Exit(125)
	}
}
`

// buildRSSWrap builds rssWrapSource into a temporary folder of t and
// returns the program's path.
func buildRSSWrap(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	e2e.WriteTestFile(t, filepath.Join(dir, "go.mod"), "module rsswrap\n\ngo 1.21\n")
	e2e.WriteTestFile(t, filepath.Join(dir, "main.go"), rssWrapSource)
	cmd := exec.Command("go", "build", "-o", "rsswrap", ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOFLAGS=", "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build the RSS wrapper: %v\n%s", err, out)
	}
	return filepath.Join(dir, "rsswrap")
}

// runMeasured runs the real prepull with args through the wrapper at wrap,
// in the clean environment of Fixture.Prepull, and measures it. It fails
// the test after a minute.
func runMeasured(t *testing.T, f *e2e.Fixture, wrap string, args ...string) measuredRun {
	t.Helper()
	result := filepath.Join(t.TempDir(), "rss")
	cmd := exec.Command(wrap, append([]string{result, testenv.Prepull(t)}, args...)...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + f.Dir, "TMPDIR=" + f.Dir}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	timer := time.AfterFunc(time.Minute, func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })
	err := cmd.Wait()
	timer.Stop()
	if err != nil {
		t.Fatalf("rsswrap: %v\nstderr:\n%s", err, errOut.String())
	}
	data, err := os.ReadFile(result)
	if err != nil {
		t.Fatal(err)
	}
	var code int
	var rssKiB, cpuNS int64
	if _, err := fmt.Sscan(string(data), &code, &rssKiB, &cpuNS); err != nil {
		t.Fatalf("rsswrap result %q: %v", data, err)
	}
	return measuredRun{Run: e2e.Run{Stdout: out.String(), Stderr: errOut.String(), Code: code}, cpu: time.Duration(cpuNS), maxRSS: rssKiB << 10}
}

// TestBadInputExit3 gives prepull every kind of bad input the issue lists,
// built around a real registry, repository and digest so that a reader that
// let one through would pull. inspect, the one-shot (configured for the real
// Docker Engine) and remote (pointed at a listener that counts connections)
// must each exit 3, name the file, print no stack trace and nothing raw from
// the input, and stay within badInputMaxCPU and badInputMaxRSS; the engine
// must see no pull and the listener no connection.
func TestBadInputExit3(t *testing.T) {
	f := e2e.NewFixture(t, "bad/input")
	good, err := os.ReadFile(f.Pak)
	if err != nil {
		t.Fatal(err)
	}
	addr, accepted := e2e.CountConnections(t)
	modes := []struct {
		name string
		args []string
	}{
		{"inspect", []string{"inspect", "--config", f.Config}},
		{"one-shot", []string{"--config", f.Config}},
		{"remote", []string{"remote", "-H", "root@" + addr, "--connect-timeout", "2s"}},
	}

	wrap := buildRSSWrap(t)
	since := time.Now()
	dir := t.TempDir()
	for i, in := range badInputs(f, good) {
		t.Run(in.name, func(t *testing.T) {
			path := in.make(t, filepath.Join(dir, strconv.Itoa(i)))
			for _, mode := range modes {
				r := runMeasured(t, f, wrap, append(mode.args, path)...)
				t.Logf("%-8s exit %d in %6.3fs of CPU, peak RSS %5.1f MiB", mode.name, r.Code, r.cpu.Seconds(), float64(r.maxRSS)/(1<<20))
				checkBadInputRun(t, mode.name, path, in.want, r)
			}
		})
	}

	// Pulls of this test's registry only: an earlier test's pull may still
	// end in the shared engine meanwhile.
	events := f.Docker.Run(t, "events", "--since", fmt.Sprintf("%d.%09d", since.Unix(), since.Nanosecond()),
		"--until", strconv.FormatInt(time.Now().Unix()+1, 10),
		"--filter", "type=image", "--filter", "event=pull", "--format", "{{.Actor.ID}}")
	for _, ref := range strings.Fields(events) {
		if strings.Contains(ref, f.Reg.Addr) {
			t.Errorf("the engine pulled %s during the bad inputs", ref)
		}
	}
	if f.Docker.HasImage(t, f.Ref) {
		t.Errorf("the engine holds %s: a bad input was pulled", f.Ref)
	}
	if n := accepted.Load(); n != 0 {
		t.Errorf("prepull remote made %d connection(s) for bad input", n)
	}
}

// checkBadInputRun checks one run of prepull on a bad input.
func checkBadInputRun(t *testing.T, mode, path, want string, r measuredRun) {
	t.Helper()
	if r.Code != 3 {
		t.Errorf("%s: exit code %d, want 3\nstdout:\n%s\nstderr:\n%s", mode, r.Code, r.Stdout, r.Stderr)
	}
	// A name that is not printable text is named quoted, as pak.Display
	// does; the one-shot logs it as a JSON string.
	named := false
	for _, name := range []string{path, strconv.Quote(path), jsonString(path)} {
		named = named || strings.Contains(r.Stderr, name)
	}
	if !named {
		t.Errorf("%s: stderr does not name %q:\n%s", mode, path, r.Stderr)
	}
	// The one-shot logs the error as a JSON string.
	if !strings.Contains(r.Stderr, want) && !strings.Contains(strings.ReplaceAll(r.Stderr, `\"`, `"`), want) {
		t.Errorf("%s: stderr does not say %q:\n%s", mode, want, r.Stderr)
	}
	for _, trace := range []string{"panic", "goroutine ", "runtime.", ".go:"} {
		if strings.Contains(r.Stderr, trace) {
			t.Errorf("%s: stderr holds %q, a stack trace?\n%s", mode, trace, r.Stderr)
		}
	}
	// One line of diagnostics, nothing raw from the input: no line the
	// input could forge, no terminal escape, no NUL.
	if lines := strings.Count(strings.TrimSuffix(r.Stderr, "\n"), "\n") + 1; lines != 1 {
		t.Errorf("%s: stderr has %d lines, want 1:\n%q", mode, lines, r.Stderr)
	}
	if strings.ContainsAny(r.Stdout+r.Stderr, "\x00\x1b\r") {
		t.Errorf("%s: output holds raw control characters:\nstdout: %q\nstderr: %q", mode, r.Stdout, r.Stderr)
	}
	if r.cpu > badInputMaxCPU {
		t.Errorf("%s: took %v of CPU, over %v", mode, r.cpu, badInputMaxCPU)
	}
	if r.maxRSS > badInputMaxRSS {
		t.Errorf("%s: peak RSS %d MiB, over %d MiB", mode, r.maxRSS>>20, badInputMaxRSS>>20)
	}
}

// jsonString returns s as a JSON string.
func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// badInputs returns the table of bad inputs: good is the fixture's pak,
// which names a pullable image.
func badInputs(f *e2e.Fixture, good []byte) []badInput {
	base := paktest.Pak{Kind: "MyAdapter", Version: "1.0.0", Registry: f.Reg.Addr, Repository: "/" + f.Repo, Digest: f.Digest}
	// pakWith returns base changed by edit.
	pakWith := func(edit func(p *paktest.Pak)) func(t *testing.T, dir string) string {
		p := base
		edit(&p)
		return func(t *testing.T, dir string) string { return writeBad(t, dir, "bad.pak", p.Bytes()) }
	}
	// confKey returns base with one .conf value replaced.
	confKey := func(key, value string) func(t *testing.T, dir string) string {
		return pakWith(func(p *paktest.Pak) { p.ExtraConf = map[string]string{key: value} })
	}
	bytesOf := func(name string, data func(t *testing.T) []byte) func(t *testing.T, dir string) string {
		return func(t *testing.T, dir string) string { return writeBad(t, dir, name, data(t)) }
	}
	truncated := func(n int) badInput {
		n = (n + len(good)) % len(good)
		return badInput{fmt.Sprintf("truncated to %d of %d bytes", n, len(good)),
			bytesOf("bad.pak", func(*testing.T) []byte { return good[:n] }), ""}
	}
	reg, repo, dgst := f.Reg.Addr, "/"+f.Repo, f.Digest
	evil := base
	evil.Repository = repo + "/evil"

	inputs := []badInput{
		// Archives that claim gigabytes, and real bombs.
		{"adapter.zip claims 4 GiB", pakWith(func(p *paktest.Pak) { p.ClaimAdapterZipSize = 4 << 30 }),
			"adapter.zip: claims 4.0 GiB uncompressed (limit 256 MiB)"},
		{"adapter.zip claims 16 EiB", pakWith(func(p *paktest.Pak) { p.ClaimAdapterZipSize = math.MaxUint64 }),
			"adapter.zip: claims 16.0 EiB uncompressed"},
		{"stored adapter.zip claims 8 GiB", pakWith(func(p *paktest.Pak) { p.StoreAdapterZip, p.ClaimAdapterZipSize = true, 8<<30 }),
			"adapter.zip: claims 8.0 GiB uncompressed"},
		{".conf claims 1 GiB", pakWith(func(p *paktest.Pak) { p.RawAdapterZip = claimingConfZip(base.Conf(), 1<<30) }),
			"adapter.zip: MyAdapter.conf: claims 1.0 GiB uncompressed (limit 64 KiB)"},
		{"manifest.txt claims 2 GiB", bytesOf("bad.pak", func(t *testing.T) []byte { return claimingManifestPak(t, base, 2<<30) }),
			"manifest.txt: claims 2.0 GiB uncompressed (limit 1 MiB)"},
		{"zip bomb: a member of adapter.zip inflates to 1 GiB", bytesOf("bad.pak", func(t *testing.T) []byte { return innerBombPak(t, base) }),
			"more than the 256 MiB limit inflated only to skip entries"},
		{"zip bomb: adapter.zip inflates to 1 GiB, claims 100 MiB", bytesOf("bad.pak", func(t *testing.T) []byte { return outerBombPak(t, base) }),
			"adapter.zip: MyAdapter/lib/junk.bin: damaged or larger than its header claims"},
		{"sparse 64 GiB file that starts like a ZIP", sparseFile("PK\x03\x04", 64<<30), "not a readable ZIP archive"},
		{"sparse 64 GiB file, not a ZIP", sparseFile("REPOSITORY=", 64<<30), "not a ZIP archive, and too large for a .conf (64.0 GiB; limit 64 KiB)"},
		{"a million members in the pak", bytesOf("bad.pak", func(*testing.T) []byte { return junkMembersPak(base, 1_000_000) }),
			"central directory larger than 8 MiB"},

		// Truncated, damaged and non-ZIP files.
		{"empty file", bytesOf("bad.pak", func(*testing.T) []byte { return nil }), "empty file"},
		truncated(1), truncated(4), truncated(30), truncated(100), truncated(len(good) / 2), truncated(-22), truncated(-1),
		{"adapter.zip's first bytes zeroed, as an interrupted copy leaves a hole", bytesOf("bad.pak", func(t *testing.T) []byte { return holePunched(t, good) }),
			"adapter.zip: damaged compressed data"},
		{"random bytes", bytesOf("bad.pak", func(*testing.T) []byte { return randomBytes(1 << 20) }),
			"not a ZIP archive, and too large for a .conf"},
		{"a PNG image", bytesOf("icon.pak", func(*testing.T) []byte {
			return []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00")
		}), "not a ZIP archive, and not a valid .conf: contains a NUL byte"},
		{"the prepull binary", func(t *testing.T, dir string) string { return testenv.Prepull(t) }, "not a ZIP archive, and too large for a .conf"},
		{"a ZIP signature then junk", bytesOf("bad.pak", func(*testing.T) []byte { return []byte("PK\x03\x04 this is no zip") }),
			"not a readable ZIP archive (truncated or damaged?)"},
		{"a ZIP that is not a pak", bytesOf("bad.pak", func(t *testing.T) []byte { return zipOf("README.txt", []byte("hello")) }),
			"neither a pak (no manifest.txt) nor an adapter archive (no .conf at its root)"},
		{"a FIFO no one writes to", func(t *testing.T, dir string) string {
			mkdirAll(t, dir)
			p := filepath.Join(dir, "fifo.pak")
			if err := syscall.Mkfifo(p, 0o600); err != nil {
				t.Fatal(err)
			}
			return p
		}, "not a regular file"},

		// Deeply nested junk.
		{"zip in zip in zip, 30 deep", pakWith(func(p *paktest.Pak) { p.RawAdapterZip = nestedZips(30) }),
			"adapter.zip: no .conf file at its root"},
		{"manifest.txt nested 100,000 deep", pakWith(func(p *paktest.Pak) {
			p.RawManifest = []byte(strings.Repeat(`{"a":[`, 50_000) + strings.Repeat(`]}`, 50_000))
		}), "manifest.txt: not valid JSON"},
		{".conf 500 folders deep", pakWith(func(p *paktest.Pak) {
			p.RawAdapterZip = zipOf(strings.Repeat("a/", 500)+"MyAdapter.conf", base.Conf())
		}), "adapter.zip: no .conf file at its root"},
		{"member name of 60 KiB", pakWith(func(p *paktest.Pak) {
			p.Inner = []paktest.Member{{Name: strings.Repeat("n", 60<<10), Data: []byte("x")}}
		}), "adapter.zip: entry 1: name longer than 4096 bytes"},
		{"100,001 members before the .conf", pakWith(func(p *paktest.Pak) { p.RawAdapterZip = manyLocalHeaders(100_001, base.Conf()) }),
			"adapter.zip: more than 100000 entries"},

		// Overlong lines, NUL bytes, invalid UTF-8.
		{"a .conf line of 5,000 bytes", confKey("DESCRIPTION", strings.Repeat("x", 5000)), "line 8: longer than 4096 bytes"},
		{"a .conf of 1 MiB", pakWith(func(p *paktest.Pak) { p.RawConf = append(base.Conf(), strings.Repeat("#", 1<<20)...) }),
			"adapter.zip: MyAdapter.conf: claims 1.0 MiB uncompressed (limit 64 KiB)"},
		{"a .conf of 10 MiB whose size only a data descriptor tells", pakWith(func(p *paktest.Pak) {
			p.Inner = []paktest.Member{{Name: "MyAdapter.conf", Data: bytes.Repeat([]byte("#"), 10<<20), Descriptor: true}}
		}), "adapter.zip: MyAdapter.conf: larger than the 64 KiB limit"},
		{"a .conf file of 1 MiB on one line", bytesOf("MyAdapter.conf", func(*testing.T) []byte {
			return []byte("REPOSITORY=" + strings.Repeat("a", 1<<20))
		}), "not a ZIP archive, and too large for a .conf (1.0 MiB; limit 64 KiB)"},
		{"a NUL byte in the .conf", confKey("REPOSITORY", repo+"\x00"), "adapter.zip: MyAdapter.conf: contains a NUL byte at offset"},
		{"a NUL byte in a .conf file", bytesOf("MyAdapter.conf", func(*testing.T) []byte { return append(base.Conf(), 0) }), "contains a NUL byte at offset"},
		{"a UTF-16 .conf, as Notepad saves it", bytesOf("MyAdapter.conf", func(*testing.T) []byte { return utf16LE(string(base.Conf())) }),
			"contains a NUL byte at offset"},
		{"invalid UTF-8 in the .conf", confKey("REPOSITORY", repo+"\xff\xfe"), "adapter.zip: MyAdapter.conf: line 6: invalid UTF-8"},
		{"invalid UTF-8 adapter kind", pakWith(func(p *paktest.Pak) { p.AdapterKinds = []string{"My\xffAdapter"} }), "manifest.txt: adapter kind"},

		// Values that try injection: each would name the real image without it.
		{"REGISTRY with a space", confKey("REGISTRY", reg+" evil.example.com"), "contains a space or control character"},
		{"REGISTRY with a newline", confKey("REGISTRY", reg+"\nevil.example.com"), "line 6: not a KEY=VALUE line"},
		{"REGISTRY with a carriage return", confKey("REGISTRY", reg+"\revil"), "contains a space or control character"},
		{"REGISTRY with ;", confKey("REGISTRY", reg+";id"), `REGISTRY "` + reg + `;id"`},
		{"REGISTRY with $()", confKey("REGISTRY", "$(id)."+reg), `REGISTRY "$(id).`},
		{"REGISTRY with ../", confKey("REGISTRY", "../"+reg), "must be a host with an optional port, without a path"},
		{"REGISTRY with @", confKey("REGISTRY", "alice@"+reg), "must not contain @"},
		{"REGISTRY as an option", confKey("REGISTRY", "--insecure-registry"), `REGISTRY "--insecure-registry"`},
		{"REPOSITORY with a space", confKey("REPOSITORY", repo+" x"), "contains a space or control character"},
		{"REPOSITORY with a newline", confKey("REPOSITORY", repo+"\nevil"), "line 7: not a KEY=VALUE line"},
		{"REPOSITORY with ;", confKey("REPOSITORY", repo+";id"), `has ";", not allowed in a repository path`},
		{"REPOSITORY with $()", confKey("REPOSITORY", repo+"$(id)"), `has "$", not allowed in a repository path`},
		{"REPOSITORY with ../", confKey("REPOSITORY", repo+"/../../../etc"), "must not contain . or .. path components"},
		{"REPOSITORY with @", confKey("REPOSITORY", repo+"@"+dgst), "must not contain @"},
		{"REPOSITORY in upper case", confKey("REPOSITORY", strings.ToUpper(repo)), "must be lower case"},
		{"REPOSITORY as an option", confKey("REPOSITORY", "-rf"), `REPOSITORY "-rf" is not a valid repository path`},
		{"DIGEST with a space", confKey("DIGEST", dgst+" x"), "has 66 characters after sha256:"},
		{"DIGEST with a newline", confKey("DIGEST", dgst+"\nevil"), "line 8: not a KEY=VALUE line"},
		{"DIGEST with ;", confKey("DIGEST", dgst[:68]+";id"), `has ";", not a hex digit`},
		{"DIGEST with $()", confKey("DIGEST", dgst[:66]+"$(id)"), `has "$", not a hex digit`},
		{"DIGEST with ../", confKey("DIGEST", "../"+dgst), `uses algorithm "../sha256", want sha256`},
		{"DIGEST with @", confKey("DIGEST", dgst[:70]+"@"), `has "@", not a hex digit`},
		{"DIGEST in upper case", confKey("DIGEST", strings.ToUpper(dgst)), "must start with sha256: in lower case"},
		{"DIGEST with upper-case hex", confKey("DIGEST", "sha256:"+strings.ToUpper(dgst[7:])), "must use lower-case hex digits"},
		{"KINDKEY with $()", confKey("KINDKEY", "$(id)"), `KINDKEY "$(id)" has "$"`},
		{"adapter kind with ../", pakWith(func(p *paktest.Pak) { p.AdapterKinds = []string{"../../etc"} }), `manifest.txt: adapter kind "../../etc" has "/"`},
		// Member names unzip -o extracts otherwise than prepull reads: the
		// pak's own .conf (the real image) first, then a second spelled
		// "./", which unzip extracts over it (the evil image).
		{"./MyAdapter.conf beside MyAdapter.conf", pakWith(func(p *paktest.Pak) {
			p.RawAdapterZip = rawZip(deflatedMember("MyAdapter.conf", base.Conf()), deflatedMember("./MyAdapter.conf", evil.Conf()))
		}), `adapter.zip: two members named "MyAdapter.conf" and "./MyAdapter.conf"`},
		{"./adapter.zip beside adapter.zip", bytesOf("bad.pak", func(*testing.T) []byte {
			return rawZip(deflatedMember("manifest.txt", base.Manifest()), deflatedMember("adapter.zip", base.AdapterZip()), deflatedMember("./adapter.zip", evil.AdapterZip()))
		}), `two members named "adapter.zip" and "./adapter.zip"`},
		{"a member that leaves the folder", bytesOf("bad.pak", func(*testing.T) []byte {
			return rawZip(deflatedMember("manifest.txt", base.Manifest()), deflatedMember("adapter.zip", base.AdapterZip()), deflatedMember("content/../../etc/cron.d/x", nil))
		}), `content/../../etc/cron.d/x: member name holds a ".." path component`},
		{"file name with a newline and a terminal escape", func(t *testing.T, dir string) string {
			return writeBad(t, dir, "evil\n\x1b[2Jpulled.pak", []byte("junk"))
		}, "not a KEY=VALUE line"},
	}
	return inputs
}

// writeBad writes data into dir as name and returns its path.
func writeBad(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	mkdirAll(t, dir)
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func mkdirAll(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
}

// sparseFile returns a builder of a sparse file of size bytes starting with
// head: it takes no room on disk.
func sparseFile(head string, size int64) func(t *testing.T, dir string) string {
	return func(t *testing.T, dir string) string {
		p := writeBad(t, dir, "sparse.pak", []byte(head))
		if err := os.Truncate(p, size); err != nil {
			t.Fatal(err)
		}
		return p
	}
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// utf16LE encodes s as UTF-16 with a byte order mark, little-endian.
func utf16LE(s string) []byte {
	out := []byte{0xff, 0xfe}
	for _, u := range utf16.Encode([]rune(s)) {
		out = binary.LittleEndian.AppendUint16(out, u)
	}
	return out
}

// zipOf returns a ZIP holding one deflated member.
func zipOf(name string, data []byte) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, err := zw.Create(name)
	if err == nil {
		_, err = w.Write(data)
	}
	if err == nil {
		err = zw.Close()
	}
	if err != nil {
		panic(err)
	}
	return buf.Bytes()
}

// nestedZips returns depth ZIPs, each holding the next as adapter.zip, the
// innermost a README.
func nestedZips(depth int) []byte {
	z := zipOf("README.txt", []byte("junk"))
	for range depth {
		z = zipOf("adapter.zip", z)
	}
	return z
}

// rawMember is a member of rawZip: body is written as is, with the method,
// CRC and sizes given, true or not.
type rawMember struct {
	name         string
	method       uint16
	flags        uint16
	body         []byte
	crc          uint32
	uncompressed uint64
}

// rawZip returns a ZIP of the members, their bodies written as given.
func rawZip(members ...rawMember) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, m := range members {
		w, err := zw.CreateRaw(&zip.FileHeader{Name: m.name, Method: m.method, Flags: m.flags, CRC32: m.crc,
			CompressedSize64: uint64(len(m.body)), UncompressedSize64: m.uncompressed})
		if err == nil {
			_, err = w.Write(m.body)
		}
		if err != nil {
			panic(err)
		}
	}
	if err := zw.Close(); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

// deflatedMember is a member of rawZip holding data, deflated.
func deflatedMember(name string, data []byte) rawMember {
	return rawMember{name: name, method: zip.Deflate, body: deflated(data), crc: crc32.ChecksumIEEE(data), uncompressed: uint64(len(data))}
}

// deflated returns data deflated.
func deflated(data []byte) []byte {
	var buf bytes.Buffer
	w, _ := flate.NewWriter(&buf, flate.DefaultCompression)
	w.Write(data)
	w.Close()
	return buf.Bytes()
}

// claimingConfZip returns an adapter.zip whose .conf claims size bytes.
func claimingConfZip(conf []byte, size uint64) []byte {
	return rawZip(rawMember{name: "MyAdapter.conf", method: zip.Deflate, body: deflated(conf), crc: crc32.ChecksumIEEE(conf), uncompressed: size})
}

// claimingManifestPak returns p with a manifest.txt that claims size bytes.
func claimingManifestPak(t *testing.T, p paktest.Pak, size uint64) []byte {
	m, inner := p.Manifest(), p.AdapterZip()
	return rawZip(
		rawMember{name: "manifest.txt", method: zip.Deflate, body: deflated(m), crc: crc32.ChecksumIEEE(m), uncompressed: size},
		rawMember{name: "adapter.zip", method: zip.Deflate, body: deflated(inner), crc: crc32.ChecksumIEEE(inner), uncompressed: uint64(len(inner))},
	)
}

// deflatedZeros returns a deflate stream of prefix and then mib MiB of
// zeros, some 1 KiB a MiB. Once its window holds only zeros, a deflater
// writes the same bytes for every further MiB of zeros, so one flushed MiB
// is repeated rather than compressed again.
func deflatedZeros(t *testing.T, prefix []byte, mib int) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := flate.NewWriter(&buf, flate.BestCompression)
	if err != nil {
		t.Fatal(err)
	}
	zero := make([]byte, 1<<20)
	flush := func(data []byte) []byte {
		if _, err := w.Write(data); err != nil {
			t.Fatal(err)
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		out := bytes.Clone(buf.Bytes())
		buf.Reset()
		return out
	}
	head, first, second, third := flush(prefix), flush(zero), flush(zero), flush(zero)
	if !bytes.Equal(second, third) {
		t.Fatal("deflatedZeros: the deflater does not repeat itself on zeros")
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	out := append(head, first...)
	out = append(out, bytes.Repeat(second, mib-1)...)
	return append(out, buf.Bytes()...)
}

// zerosCRC returns the CRC-32 of mib MiB of zeros.
func zerosCRC(mib int) uint32 {
	zero := make([]byte, 1<<20)
	var crc uint32
	for range mib {
		crc = crc32.Update(crc, crc32.IEEETable, zero)
	}
	return crc
}

// innerBombPak returns p whose adapter.zip, 1 MiB, first holds a member with
// a data descriptor that inflates to 1 GiB of zeros, then the .conf: to
// find the .conf, the reader would have to inflate it all.
func innerBombPak(t *testing.T, p paktest.Pak) []byte {
	body := deflatedZeros(t, nil, 1024)
	conf := p.Conf()
	p.RawAdapterZip = rawZip(
		rawMember{name: "MyAdapter/lib/zeros.bin", method: zip.Deflate, flags: 0x8, body: body, crc: zerosCRC(1024), uncompressed: 1 << 30},
		rawMember{name: "MyAdapter.conf", method: zip.Deflate, body: deflated(conf), crc: crc32.ChecksumIEEE(conf), uncompressed: uint64(len(conf))},
	)
	return p.Bytes()
}

// outerBombPak returns a pak whose adapter.zip inflates to a member header
// and 1 GiB of zeros but claims 100 MiB: below the limit, so the reader
// starts and must stop where the claim ends.
func outerBombPak(t *testing.T, p paktest.Pak) []byte {
	name := "MyAdapter/lib/junk.bin"
	h := make([]byte, 30, 30+len(name))
	le := binary.LittleEndian
	le.PutUint32(h[0:], 0x04034b50)
	le.PutUint16(h[4:], 20)
	le.PutUint32(h[18:], 200<<20) // stored, 200 MiB: within the limits
	le.PutUint32(h[22:], 200<<20)
	le.PutUint16(h[26:], uint16(len(name)))
	h = append(h, name...)
	m := p.Manifest()
	return rawZip(
		rawMember{name: "manifest.txt", method: zip.Deflate, body: deflated(m), crc: crc32.ChecksumIEEE(m), uncompressed: uint64(len(m))},
		rawMember{name: "adapter.zip", method: zip.Deflate, body: deflatedZeros(t, h, 1024), uncompressed: 100 << 20},
	)
}

// manyLocalHeaders returns an adapter.zip stream of n empty stored members
// and then the .conf, without a central directory: what the reader scans.
func manyLocalHeaders(n int, conf []byte) []byte {
	le := binary.LittleEndian
	h := make([]byte, 31)
	le.PutUint32(h[0:], 0x04034b50)
	le.PutUint16(h[4:], 20)
	le.PutUint16(h[26:], 1)
	h[30] = 'x'
	out := bytes.Repeat(h, n)
	return append(out, zipOf("MyAdapter.conf", conf)...)
}

// junkMembersPak returns p's manifest.txt and adapter.zip followed by n
// central directory records of 47 bytes, all pointing at the manifest.
func junkMembersPak(p paktest.Pak, n int) []byte {
	z := rawZip(
		rawMember{name: "manifest.txt", method: zip.Store, body: p.Manifest(), crc: crc32.ChecksumIEEE(p.Manifest()), uncompressed: uint64(len(p.Manifest()))},
		rawMember{name: "adapter.zip", method: zip.Store, body: p.AdapterZip(), crc: crc32.ChecksumIEEE(p.AdapterZip()), uncompressed: uint64(len(p.AdapterZip()))},
	)
	le := binary.LittleEndian
	end := z[len(z)-22:]
	dirSize, dirOffset := le.Uint32(end[12:]), le.Uint32(end[16:])
	rec := make([]byte, 47)
	le.PutUint32(rec[0:], 0x02014b50)
	le.PutUint16(rec[4:], 20)
	le.PutUint16(rec[6:], 20)
	le.PutUint16(rec[28:], 1)
	rec[46] = 'x'
	out := append(bytes.Clone(z[:len(z)-22]), bytes.Repeat(rec, n)...)
	newEnd := bytes.Clone(end)
	count := uint16(2 + n) // archive/zip compares only the low 16 bits
	le.PutUint16(newEnd[8:], count)
	le.PutUint16(newEnd[10:], count)
	le.PutUint32(newEnd[12:], dirSize+uint32(47*n))
	le.PutUint32(newEnd[16:], dirOffset)
	return append(out, newEnd...)
}

// holePunched returns good with the first 64 bytes of its adapter.zip data,
// where the .conf is, zeroed, its size unchanged. (Damage after the .conf
// goes unseen by design: the reader stops at the .conf, whose own CRC it
// checks.)
func holePunched(t *testing.T, good []byte) []byte {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(good), int64(len(good)))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range zr.File {
		if f.Name != "adapter.zip" {
			continue
		}
		off, err := f.DataOffset()
		if err != nil {
			t.Fatal(err)
		}
		out := bytes.Clone(good)
		clear(out[off : off+64])
		return out
	}
	t.Fatal("the pak has no adapter.zip")
	return nil
}

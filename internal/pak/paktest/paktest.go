// Package paktest builds management packs for tests, laid out the way each
// Integration SDK release's build tool (tools/build.py of the alpha,
// mp_build.py from 0.4.0) lays them out: an outer ZIP holding manifest.txt,
// the scripts, the icon, the EULA, resources/, content/ and, last,
// adapter.zip, whose first member is the adapter's .conf. Files are deflated,
// directories are stored, sizes are in the local headers (no data
// descriptors), as Python's zipfile writes them to a file. Every member is
// built here; nothing is copied from the SDK's templates.
//
// The zero Pak is a pack of the newest release (Release131) with no REGISTRY
// line; set Registry (for example to paktest.Registry) for a pack that names
// its registry, or From for the registry string given to mp-build, and
// Release for another release's layout.
package paktest

import (
	"archive/zip"
	"bufio"
	"bytes"
	"compress/flate"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// Defaults used for the fields of a Pak left empty, and handy values for
// tests.
const (
	Kind     = "MyAdapter"
	Version  = "1.0.0"
	Registry = "harbor.example.com"
	Digest   = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
)

// Release is an Integration SDK release whose pak layout a Pak imitates.
type Release string

// The releases whose build tool was read. Internal betas write what the
// alpha writes.
const (
	ReleaseAlpha Release = "alpha" // tools/build.py, 2022
	Release040   Release = "0.4.0"
	Release051   Release = "0.5.1"
	Release101   Release = "1.0.1"
	Release110   Release = "1.1.0"
	Release120   Release = "1.2.0"
	Release131   Release = "1.3.1"
)

// Releases lists every release, oldest first.
var Releases = []Release{ReleaseAlpha, Release040, Release051, Release101, Release110, Release120, Release131}

// zeroX tells whether r is a 0.x release or the alpha: <kind>_adapter3
// naming, a manifest name without "iSDK_", REGISTRY split off at the first
// "/".
func (r Release) zeroX() bool { return r == ReleaseAlpha || r == Release040 || r == Release051 }

// images tells whether r zips <dir>/conf/images/ (the project template's
// empty AdapterKind, ResourceKind and TraversalSpec folders).
func (r Release) images() bool { return r != ReleaseAlpha && r != Release040 && r != Release110 }

// versionTxt tells whether r writes <dir>/conf/version.txt.
func (r Release) versionTxt() bool { return r == Release120 || r == Release131 }

// SplitRegistry returns the REGISTRY and REPOSITORY (with its leading slash)
// that release r writes for the registry string s given to it (mp-build -r,
// or the project's config.json). 0.x and the alpha split s at its first
// "/", so that a Docker Hub repository user/repo gives REGISTRY=user. 1.x
// takes a first component without a dot for part of a Docker Hub repository
// (REGISTRY=registry.hub.docker.com) and cuts anything after a ":" in the
// repository off as a tag, which mangles localhost:5000/team/app into
// REPOSITORY=/localhost.
func SplitRegistry(r Release, s string) (registry, repository string) {
	if r.zeroX() {
		host, path, _ := strings.Cut(s, "/")
		return host, "/" + path
	}
	domain, path := "registry.hub.docker.com", s
	port := ""
	if first, rest, ok := strings.Cut(s, "/"); ok {
		domain, path = first, rest
		if !strings.Contains(domain, ".") {
			domain, path = "registry.hub.docker.com", first+"/"+rest
		}
		domain, port, _ = strings.Cut(domain, ":")
		path, _, _ = strings.Cut(path, ":")
	}
	if port != "" {
		domain += ":" + port
	}
	return domain, "/" + path
}

// Member is an extra member of an adapter archive.
type Member struct {
	Name       string
	Data       []byte
	Store      bool // stored rather than deflated
	Descriptor bool // sizes and CRC in a data descriptor after the data, as streaming writers do
}

// Pak describes a management pack to build. Empty fields take the defaults
// documented on each.
type Pak struct {
	Release    Release // the SDK release whose layout to build; "" means Release131
	Kind       string  // adapter kind; "" means Kind
	Name       string  // manifest name; "" means "iSDK_" + the kind (1.x), the kind (0.x, alpha)
	Version    string  // manifest version; "" means Version
	Registry   string  // REGISTRY; "" leaves the line out, as --use-default-registry does
	Repository string  // REPOSITORY with its leading slash; "" means "/my-project/" + the lower-case kind
	Digest     string  // DIGEST; "" means Digest
	// From, when set, is the registry string given to mp-build; REGISTRY
	// and REPOSITORY are then what the release makes of it (SplitRegistry),
	// and Registry and Repository are not used.
	From string

	Icon    string // the manifest's pak_icon, the icon's member name; "" means "icon.png"
	NoIcon  bool   // pak_icon left empty: no icon in the pak
	NoEULA  bool   // eula_file left empty: no EULA in the pak
	Scripts bool   // the manifest names a validation, a pre-install and a post-install script

	Adapter3 bool // SDK 0.4 to 0.5.1 naming (implied by those releases): <kind>_adapter3.conf and folder <kind>_adapter3/
	CRLF     bool // CRLF line endings in the .conf, as built on Windows
	HTTP     bool // built with -i: API_PROTOCOL=http and API_PORT=8080
	Classic  bool // a classic Java pack: adapters.zip with a .jar and no .conf

	// ContentBytes is the size of incompressible filler added under
	// content/, for big-pak tests. It is streamed by Write, never held in
	// memory, and written as deflate stored blocks so that it costs no CPU.
	ContentBytes int64

	// ExtraConf sets .conf keys: a key already written gets the new value
	// in place (an empty value leaves "KEY="), other keys are appended in
	// key order.
	ExtraConf map[string]string
	// RawConf, when not nil, is the whole .conf instead of the generated one.
	RawConf []byte
	// ConfName is the .conf's member name; "" means <kind>.conf (or
	// <kind>_adapter3.conf).
	ConfName string
	// Inner holds extra adapter archive members, written before the .conf.
	Inner []Member

	// AdapterKinds is the manifest's adapter_kinds; nil means [kind] and an
	// empty non-nil slice writes [].
	AdapterKinds []string
	// Adapters is the manifest's adapters; nil means ["adapter.zip"] (or
	// ["adapters.zip"] when Classic). The adapter archive is stored under
	// the first name.
	Adapters []string
	// RawManifest, when not nil, is the whole manifest.txt.
	RawManifest []byte
	// RawAdapterZip, when not nil, is the whole adapter archive.
	RawAdapterZip []byte
	// StoreAdapterZip stores the adapter archive in the pak instead of
	// deflating it.
	StoreAdapterZip bool
	// ClaimAdapterZipSize, when not 0, is the uncompressed size the pak
	// claims for the adapter archive, true or not.
	ClaimAdapterZipSize uint64
}

// modified is the fixed time stamp of every member, for reproducible output.
var modified = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

func (p Pak) release() Release {
	if p.Release == "" {
		return Release131
	}
	return p.Release
}

func (p Pak) kind() string {
	if p.Kind == "" {
		return Kind
	}
	return p.Kind
}

func (p Pak) version() string {
	if p.Version == "" {
		return Version
	}
	return p.Version
}

func (p Pak) name() string {
	switch {
	case p.Name != "":
		return p.Name
	case p.release().zeroX():
		return p.kind()
	}
	return "iSDK_" + p.kind()
}

// registry returns REGISTRY, "" for none.
func (p Pak) registry() string {
	if p.From != "" {
		r, _ := SplitRegistry(p.release(), p.From)
		return r
	}
	return p.Registry
}

func (p Pak) repository() string {
	if p.From != "" {
		_, repo := SplitRegistry(p.release(), p.From)
		return repo
	}
	if p.Repository == "" {
		return "/my-project/" + strings.ToLower(p.kind())
	}
	return p.Repository
}

func (p Pak) digest() string {
	if p.Digest == "" {
		return Digest
	}
	return p.Digest
}

func (p Pak) adapters() []string {
	switch {
	case p.Adapters != nil:
		return p.Adapters
	case p.Classic:
		return []string{"adapters.zip"}
	}
	return []string{"adapter.zip"}
}

// adapterMember is the adapter archive's member name in the pak: the first
// of the manifest's adapters, or "adapter.zip" when it lists none.
func (p Pak) adapterMember() string {
	if a := p.adapters(); len(a) > 0 {
		return a[0]
	}
	return "adapter.zip"
}

// adapterDir is the adapter's folder in the adapter archive: the alpha
// names it after the manifest name, 0.x after the kind with "_adapter3", 1.x
// after the kind.
func (p Pak) adapterDir() string {
	switch {
	case p.release() == ReleaseAlpha:
		return p.name() + "_adapter3"
	case p.Adapter3 || p.Classic || p.release().zeroX():
		return p.kind() + "_adapter3"
	}
	return p.kind()
}

// icon returns the icon's member name, "" for none.
func (p Pak) icon() string {
	switch {
	case p.NoIcon:
		return ""
	case p.Icon != "":
		return p.Icon
	}
	return "icon.png"
}

// eula returns the EULA's member name, "" for none.
func (p Pak) eula() string {
	if p.NoEULA {
		return ""
	}
	return "eula.txt"
}

// The script names a Pak with Scripts gives its manifest.
const (
	validationScript = "validate.py"
	preScript        = "pre-install.sh"
	postScript       = "post-install.sh"
)

// confName returns the .conf's member name in the adapter archive.
func (p Pak) confName() string {
	if p.ConfName != "" {
		return p.ConfName
	}
	return p.adapterDir() + ".conf"
}

// FileName returns the pak's file name as the release's build tool names it:
// the manifest name ("iSDK_" prefix removed from 1.0 on), "_", the version
// and ".pak".
func (p Pak) FileName() string {
	name := p.name()
	if !p.release().zeroX() {
		name = strings.TrimPrefix(name, "iSDK_")
	}
	return name + "_" + p.version() + ".pak"
}

// Reference returns the image reference a reader should find, as the proxy
// builds it (REGISTRY + REPOSITORY + "@" + DIGEST), using defaultRegistry
// when the pack has no REGISTRY.
func (p Pak) Reference(defaultRegistry string) string {
	registry := p.registry()
	if registry == "" {
		registry = defaultRegistry
	}
	return registry + p.repository() + "@" + p.digest()
}

// DigestOf returns a sha256 digest of s, for tests that need distinct
// digests.
func DigestOf(s string) string {
	sum := sha256.Sum256([]byte(s))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// Conf returns the adapter's .conf as mp_build.py writes it, or RawConf.
func (p Pak) Conf() []byte {
	if p.RawConf != nil {
		return p.RawConf
	}
	protocol, port := "https", "443"
	if p.HTTP {
		protocol, port = "http", "8080"
	}
	lines := [][2]string{{"KINDKEY", p.kind()}, {"API_VERSION", "1.0.0"}}
	if p.release() == ReleaseAlpha {
		// The alpha keys the conf by the manifest name and writes no API_PROTOCOL, API_PORT.
		lines[0][1] = p.name()
	} else {
		lines = append(lines, [2]string{"API_PROTOCOL", protocol}, [2]string{"API_PORT", port})
	}
	if r := p.registry(); r != "" {
		lines = append(lines, [2]string{"REGISTRY", r})
	}
	lines = append(lines, [2]string{"REPOSITORY", p.repository()}, [2]string{"DIGEST", p.digest()})

	keys := make([]string, 0, len(p.ExtraConf))
	for k := range p.ExtraConf {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		i := slices.IndexFunc(lines, func(l [2]string) bool { return l[0] == k })
		if i >= 0 {
			lines[i][1] = p.ExtraConf[k]
		} else {
			lines = append(lines, [2]string{k, p.ExtraConf[k]})
		}
	}
	eol := "\n"
	if p.CRLF {
		eol = "\r\n"
	}
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(l[0] + "=" + l[1] + eol)
	}
	return []byte(b.String())
}

// Manifest returns manifest.txt as the SDK's mp-init writes it, or
// RawManifest.
func (p Pak) Manifest() []byte {
	if p.RawManifest != nil {
		return p.RawManifest
	}
	kinds := p.AdapterKinds
	if kinds == nil {
		kinds = []string{p.kind()}
	}
	var validation, pre, post string
	if p.Scripts {
		validation, pre, post = validationScript, preScript, postScript
	}
	type script struct {
		Script string `json:"script"`
	}
	m := struct {
		DisplayName          string   `json:"display_name"`
		Name                 string   `json:"name"`
		Description          string   `json:"description"`
		Version              string   `json:"version"`
		VcopsMinimumVersion  string   `json:"vcops_minimum_version"`
		DiskSpaceRequired    int      `json:"disk_space_required"`
		RunScriptsOnAllNodes string   `json:"run_scripts_on_all_nodes"`
		EulaFile             string   `json:"eula_file"`
		Platform             []string `json:"platform"`
		Vendor               string   `json:"vendor"`
		PakIcon              string   `json:"pak_icon"`
		PakValidationScript  script   `json:"pak_validation_script"`
		AdapterPreScript     script   `json:"adapter_pre_script"`
		AdapterPostScript    script   `json:"adapter_post_script"`
		Adapters             []string `json:"adapters"`
		AdapterKinds         []string `json:"adapter_kinds"`
		LicenseType          string   `json:"license_type"`
	}{
		DisplayName:          "DISPLAY_NAME",
		Name:                 p.name(),
		Description:          "DESCRIPTION",
		Version:              p.version(),
		VcopsMinimumVersion:  "8.10.0",
		DiskSpaceRequired:    500,
		RunScriptsOnAllNodes: "true",
		EulaFile:             p.eula(),
		Platform:             []string{"Linux Non-VA", "Linux VA"},
		Vendor:               "VENDOR",
		PakIcon:              p.icon(),
		PakValidationScript:  script{validation},
		AdapterPreScript:     script{pre},
		AdapterPostScript:    script{post},
		Adapters:             p.adapters(),
		AdapterKinds:         kinds,
	}
	out, err := json.MarshalIndent(m, "", "    ")
	if err != nil { // cannot happen: plain strings and slices
		panic(err)
	}
	return out
}

// AdapterZip returns the adapter archive (adapter.zip, or adapters.zip for a
// classic pack), or RawAdapterZip.
func (p Pak) AdapterZip() []byte {
	if p.RawAdapterZip != nil {
		return p.RawAdapterZip
	}
	var buf bytes.Buffer
	z := newZipWriter(&buf)
	kind, dir := p.kind(), p.adapterDir()
	for _, m := range p.Inner {
		z.member(m)
	}
	if p.Classic {
		z.dir(dir + "/")
		z.dir(dir + "/conf/")
		z.file(dir+"/conf/describe.xml", describe(kind))
		z.file(dir+"/conf/version.txt", p.versionTxt())
		z.dir(dir + "/lib/")
		z.file(dir+"/lib/commons-lang.jar", []byte("PK\x05\x06"+strings.Repeat("\x00", 18)))
		z.file(dir+".jar", []byte("PK\x05\x06"+strings.Repeat("\x00", 18)))
		z.close()
		return buf.Bytes()
	}
	z.file(p.confName(), p.Conf())
	z.file("manifest.txt", p.Manifest())
	if eula := p.eula(); eula != "" {
		z.file(eula, eulaText)
	}
	if icon := p.icon(); icon != "" {
		z.file(icon, iconPNG)
	}
	z.dir("resources/")
	z.file("resources/resources.properties", []byte("DISPLAY_NAME=My Adapter\nDESCRIPTION=A test adapter\n"))
	// The adapter folder as os.walk gives it: a folder, its files, then its
	// sub-folders.
	r := p.release()
	z.dir(dir + "/")
	z.dir(dir + "/conf/")
	z.file(dir+"/conf/describe.xml", describe(kind))
	z.file(dir+"/conf/describeSchema.xsd", []byte(`<?xml version="1.0" encoding="UTF-8"?><xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema"/>`))
	if r.versionTxt() {
		z.file(dir+"/conf/version.txt", p.versionTxt())
	}
	if r.images() {
		z.dir(dir + "/conf/images/")
		z.dir(dir + "/conf/images/AdapterKind/")
		z.dir(dir + "/conf/images/ResourceKind/")
		z.dir(dir + "/conf/images/TraversalSpec/")
	}
	z.dir(dir + "/conf/resources/")
	z.file(dir+"/conf/resources/resources.properties", []byte("version=1\n"))
	z.close()
	return buf.Bytes()
}

func (p Pak) versionTxt() []byte {
	v := append(strings.Split(p.version(), "."), "0", "0", "0")
	return fmt.Appendf(nil, "Major-Version=%s\nMinor-Version=%s\nImplementation-Version=%s\n", v[0], v[1], v[2])
}

func describe(kind string) []byte {
	return fmt.Appendf(nil, `<?xml version="1.0" encoding="UTF-8"?>
<AdapterKind key="%s" nameKey="1" version="1" xmlns="http://schemas.vmware.com/vcops/schema">
</AdapterKind>
`, kind)
}

// iconPNG is a 1x1 PNG.
var iconPNG = []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82")

// eulaText is the EULA the SDK's project template writes.
var eulaText = []byte("There is no EULA associated with this Management Pack.")

// contentDirs are the content/ folders of the SDK's project template, in the
// order it makes them; the template puts a .gitkeep in each but files/.
var contentDirs = []string{
	"policies", "traversalspecs", "resources", "customgroups", "reports", "recommendations", "dashboards",
	"files", "files/topowidget", "files/txtwidget", "files/solutionconfig", "files/reskndmetric",
	"alertdefs", "supermetrics", "symptomdefs",
}

// Write streams the pak to w: manifest.txt, the scripts (validation,
// post-install, pre-install, as mp_build.py adds them), the icon, the EULA,
// resources/, content/ and last the adapter archive.
func (p Pak) Write(w io.Writer) error {
	z := newZipWriter(w)
	z.file("manifest.txt", p.Manifest())
	if p.Scripts {
		z.file(validationScript, []byte("#!/usr/bin/env python3\n"))
		z.file(postScript, []byte("#!/bin/sh\n"))
		z.file(preScript, []byte("#!/bin/sh\n"))
	}
	if icon := p.icon(); icon != "" {
		z.file(icon, iconPNG)
	}
	if eula := p.eula(); eula != "" {
		z.file(eula, eulaText)
	}
	z.dir("resources/")
	z.file("resources/resources.properties", []byte("DISPLAY_NAME=My Adapter\nDESCRIPTION=A test adapter\n"))
	z.dir("content/")
	r := p.release()
	for _, d := range contentDirs {
		z.dir("content/" + d + "/")
		// 0.4.0 zips the template's .gitkeep files; later releases skip them.
		if r == Release040 && d != "files" {
			z.file("content/"+d+"/.gitkeep", nil)
		}
		// The template's schemas for alert definitions and traversal specs.
		switch {
		case d == "alertdefs" && r != ReleaseAlpha:
			z.file("content/alertdefs/alertDefinitionSchema.xsd", []byte(`<?xml version="1.0" encoding="UTF-8"?><xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema"/>`))
		case d == "traversalspecs" && r != ReleaseAlpha:
			z.file("content/traversalspecs/traversalSpecsSchema.xsd", []byte(`<?xml version="1.0" encoding="UTF-8"?><xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema"/>`))
		case d == "files" && p.ContentBytes > 0:
			z.filler("content/files/filler", p.ContentBytes)
		}
	}
	inner := p.AdapterZip()
	if p.StoreAdapterZip {
		z.raw(p.adapterMember(), zip.Store, inner, inner, p.ClaimAdapterZipSize)
	} else {
		z.raw(p.adapterMember(), zip.Deflate, inner, deflate(inner), p.ClaimAdapterZipSize)
	}
	return z.close()
}

// Bytes returns the whole pak. Use Write or WriteFile for big ones.
func (p Pak) Bytes() []byte {
	var buf bytes.Buffer
	if err := p.Write(&buf); err != nil { // cannot happen: a bytes.Buffer does not fail
		panic(err)
	}
	return buf.Bytes()
}

// WriteFile writes the pak into dir under its FileName and returns its path.
// It fails the test on error.
func (p Pak) WriteFile(t testing.TB, dir string) string {
	t.Helper()
	path := filepath.Join(dir, p.FileName())
	if err := p.Save(path); err != nil {
		t.Fatal(err)
	}
	return path
}

// Save writes the pak to the file at path, streamed, so that paks with a
// large ContentBytes never sit in memory.
func (p Pak) Save(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	err = p.Write(bw)
	if err == nil {
		err = bw.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// AddMember writes the zip archive of data (a pak) to path with one more,
// empty, member called name, every other member copied as it is: e.g. a
// signature.jws, which makes a pak signed.
func AddMember(t testing.TB, data []byte, path, name string) {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, f := range zr.File {
		if err := zw.Copy(f); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := zw.Create(name); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
}

// zipWriter writes members the way Python's zipfile does to a file: sizes and
// CRC in the local header, directories stored and empty. The first error
// sticks and is returned by close.
type zipWriter struct {
	zw  *zip.Writer
	err error
}

func newZipWriter(w io.Writer) *zipWriter { return &zipWriter{zw: zip.NewWriter(w)} }

func (z *zipWriter) dir(name string) {
	if z.err != nil {
		return
	}
	fh := &zip.FileHeader{Name: name, Method: zip.Store, Modified: modified}
	fh.SetMode(fs.ModeDir | 0o755)
	_, z.err = z.zw.CreateRaw(fh)
}

func (z *zipWriter) file(name string, data []byte) {
	z.raw(name, zip.Deflate, data, deflate(data), 0)
}

// raw writes a member whose stored bytes are body; data is what they hold.
// claim, when not 0, replaces the uncompressed size in the headers.
func (z *zipWriter) raw(name string, method uint16, data, body []byte, claim uint64) {
	if z.err != nil {
		return
	}
	fh := &zip.FileHeader{
		Name:               name,
		Method:             method,
		Modified:           modified,
		CRC32:              crc32.ChecksumIEEE(data),
		CompressedSize64:   uint64(len(body)),
		UncompressedSize64: uint64(len(data)),
	}
	if claim != 0 {
		fh.UncompressedSize64 = claim
	}
	fh.SetMode(0o644)
	w, err := z.zw.CreateRaw(fh)
	if err == nil {
		_, err = w.Write(body)
	}
	z.err = err
}

// member writes an extra member, with a data descriptor if asked.
func (z *zipWriter) member(m Member) {
	method := zip.Deflate
	if m.Store {
		method = zip.Store
	}
	if !m.Descriptor {
		body := m.Data
		if !m.Store {
			body = deflate(m.Data)
		}
		z.raw(m.Name, method, m.Data, body, 0)
		return
	}
	if z.err != nil {
		return
	}
	// archive/zip always streams with a data descriptor (signature included).
	fh := &zip.FileHeader{Name: m.Name, Method: method, Modified: modified}
	fh.SetMode(0o644)
	w, err := z.zw.CreateHeader(fh)
	if err == nil {
		_, err = w.Write(m.Data)
	}
	z.err = err
}

// filler writes n bytes of incompressible data as members of at most 64 MiB
// named prefix-000.bin, prefix-001.bin, ..., deflated as stored blocks.
func (z *zipWriter) filler(prefix string, n int64) {
	const part = 64 << 20
	for i := 0; n > 0 && z.err == nil; i++ {
		size := min(n, part)
		n -= size
		src := newFillerSource(int64(i))
		crc := src.crc(size)
		fh := &zip.FileHeader{
			Name:               fmt.Sprintf("%s-%03d.bin", prefix, i),
			Method:             zip.Deflate,
			Modified:           modified,
			CRC32:              crc,
			CompressedSize64:   uint64(storedDeflateSize(size)),
			UncompressedSize64: uint64(size),
		}
		fh.SetMode(0o644)
		w, err := z.zw.CreateRaw(fh)
		if err == nil {
			err = src.writeStored(w, size)
		}
		z.err = err
	}
}

func (z *zipWriter) close() error {
	if err := z.zw.Close(); z.err == nil {
		z.err = err
	}
	return z.err
}

// deflate compresses data at zlib's default level, as Python's zipfile does.
func deflate(data []byte) []byte {
	var buf bytes.Buffer
	fw, err := flate.NewWriter(&buf, flate.DefaultCompression)
	if err == nil {
		_, err = fw.Write(data)
	}
	if err == nil {
		err = fw.Close()
	}
	if err != nil { // cannot happen: a valid level and a bytes.Buffer
		panic(err)
	}
	return buf.Bytes()
}

// maxStored is the most data one deflate stored block holds.
const maxStored = 65535

// storedDeflateSize is the size of n bytes as deflate stored blocks: 5 bytes
// of header per block.
func storedDeflateSize(n int64) int64 {
	blocks := max((n+maxStored-1)/maxStored, 1)
	return n + 5*blocks
}

// fillerSource is a repeating 1 MiB block of random bytes. Deflate cannot
// compress it (its window is 32 KiB) and it costs nothing to produce.
type fillerSource struct{ block []byte }

func newFillerSource(seed int64) fillerSource {
	block := make([]byte, 1<<20)
	r := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), 'p', 'a', 'k'})
	r.Read(block)
	return fillerSource{block: block}
}

// at returns the source's bytes from offset off, up to n of them.
func (s fillerSource) at(off, n int64) []byte {
	i := off % int64(len(s.block))
	return s.block[i:min(int64(len(s.block)), i+n)]
}

// crc returns the CRC-32 of the first n bytes.
func (s fillerSource) crc(n int64) uint32 {
	var crc uint32
	for off := int64(0); off < n; {
		b := s.at(off, n-off)
		crc = crc32.Update(crc, crc32.IEEETable, b)
		off += int64(len(b))
	}
	return crc
}

// writeStored writes the first n bytes as deflate stored blocks.
func (s fillerSource) writeStored(w io.Writer, n int64) error {
	var hdr [5]byte
	off := int64(0)
	for {
		size := min(n-off, maxStored)
		last := off+size == n
		hdr[0] = 0
		if last {
			hdr[0] = 1 // BFINAL, BTYPE 00 (stored)
		}
		binary.LittleEndian.PutUint16(hdr[1:], uint16(size))
		binary.LittleEndian.PutUint16(hdr[3:], ^uint16(size))
		if _, err := w.Write(hdr[:]); err != nil {
			return err
		}
		for end := off + size; off < end; {
			b := s.at(off, end-off)
			if _, err := w.Write(b); err != nil {
				return err
			}
			off += int64(len(b))
		}
		if last {
			return nil
		}
	}
}

package pak_test

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/prepull/prepull/internal/pak/paktest"
)

// zipMembers returns the member names of the ZIP archive b, checking that
// folders are stored, files deflated and sizes in the local headers, as
// Python's zipfile writes a file.
func zipMembers(t *testing.T, b []byte) []string {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range zr.File {
		names = append(names, f.Name)
		isDir := strings.HasSuffix(f.Name, "/")
		if isDir && f.Method != zip.Store || !isDir && f.Method != zip.Deflate {
			t.Errorf("%s: method %d", f.Name, f.Method)
		}
		if f.Flags&0x8 != 0 {
			t.Errorf("%s: has a data descriptor", f.Name)
		}
	}
	return names
}

// Each release's template content/ as its build tool zips it: 0.4.0 zips
// the .gitkeep files, later releases skip them; the alpha's template has no
// schemas.
const (
	contentAlpha = "content/ content/policies/ content/traversalspecs/ content/resources/ content/customgroups/ content/reports/ " +
		"content/recommendations/ content/dashboards/ content/files/ content/files/topowidget/ content/files/txtwidget/ " +
		"content/files/solutionconfig/ content/files/reskndmetric/ content/alertdefs/ content/supermetrics/ content/symptomdefs/"
	content040 = "content/ content/policies/ content/policies/.gitkeep content/traversalspecs/ content/traversalspecs/.gitkeep " +
		"content/traversalspecs/traversalSpecsSchema.xsd content/resources/ content/resources/.gitkeep content/customgroups/ " +
		"content/customgroups/.gitkeep content/reports/ content/reports/.gitkeep content/recommendations/ content/recommendations/.gitkeep " +
		"content/dashboards/ content/dashboards/.gitkeep content/files/ content/files/topowidget/ content/files/topowidget/.gitkeep " +
		"content/files/txtwidget/ content/files/txtwidget/.gitkeep content/files/solutionconfig/ content/files/solutionconfig/.gitkeep " +
		"content/files/reskndmetric/ content/files/reskndmetric/.gitkeep content/alertdefs/ content/alertdefs/.gitkeep " +
		"content/alertdefs/alertDefinitionSchema.xsd content/supermetrics/ content/supermetrics/.gitkeep content/symptomdefs/ content/symptomdefs/.gitkeep"
	content = "content/ content/policies/ content/traversalspecs/ content/traversalspecs/traversalSpecsSchema.xsd content/resources/ " +
		"content/customgroups/ content/reports/ content/recommendations/ content/dashboards/ content/files/ content/files/topowidget/ " +
		"content/files/txtwidget/ content/files/solutionconfig/ content/files/reskndmetric/ content/alertdefs/ " +
		"content/alertdefs/alertDefinitionSchema.xsd content/supermetrics/ content/symptomdefs/"
	images = " D/conf/images/ D/conf/images/AdapterKind/ D/conf/images/ResourceKind/ D/conf/images/TraversalSpec/"
)

// inner returns an adapter archive's member list for folder dir.
func inner(conf, dir string, versionTxt, withImages bool) string {
	s := conf + " manifest.txt eula.txt icon.png resources/ resources/resources.properties D/ D/conf/ D/conf/describe.xml D/conf/describeSchema.xsd"
	if versionTxt {
		s += " D/conf/version.txt"
	}
	if withImages {
		s += images
	}
	s += " D/conf/resources/ D/conf/resources/resources.properties"
	return strings.ReplaceAll(s, "D/", dir+"/")
}

// TestPaktestReleases checks that paktest builds each SDK release's exact
// layout, as pak-format.md records it from each release's build tool.
func TestPaktestReleases(t *testing.T) {
	head := "manifest.txt icon.png eula.txt resources/ resources/resources.properties "
	tests := []struct {
		release            paktest.Release
		file, manifestName string
		outer, inner, conf string
	}{
		{paktest.ReleaseAlpha, "MyAdapter_1.0.0.pak", "MyAdapter", head + contentAlpha + " adapter.zip",
			inner("MyAdapter_adapter3.conf", "MyAdapter_adapter3", false, false),
			"KINDKEY=MyAdapter\nAPI_VERSION=1.0.0\nREGISTRY=harbor.example.com\nREPOSITORY=/my-project/myadapter\nDIGEST=" + digest + "\n"},
		{paktest.Release040, "MyAdapter_1.0.0.pak", "MyAdapter", head + content040 + " adapter.zip",
			inner("MyAdapter_adapter3.conf", "MyAdapter_adapter3", false, false),
			"KINDKEY=MyAdapter\nAPI_VERSION=1.0.0\nAPI_PROTOCOL=https\nAPI_PORT=443\nREGISTRY=harbor.example.com\nREPOSITORY=/my-project/myadapter\nDIGEST=" + digest + "\n"},
		{paktest.Release051, "MyAdapter_1.0.0.pak", "MyAdapter", head + content + " adapter.zip",
			inner("MyAdapter_adapter3.conf", "MyAdapter_adapter3", false, true), ""},
		{paktest.Release101, "MyAdapter_1.0.0.pak", "iSDK_MyAdapter", head + content + " adapter.zip",
			inner("MyAdapter.conf", "MyAdapter", false, true), ""},
		{paktest.Release110, "MyAdapter_1.0.0.pak", "iSDK_MyAdapter", head + content + " adapter.zip",
			inner("MyAdapter.conf", "MyAdapter", false, false), ""},
		{paktest.Release120, "MyAdapter_1.0.0.pak", "iSDK_MyAdapter", head + content + " adapter.zip",
			inner("MyAdapter.conf", "MyAdapter", true, true), ""},
		{paktest.Release131, "MyAdapter_1.0.0.pak", "iSDK_MyAdapter", head + content + " adapter.zip",
			inner("MyAdapter.conf", "MyAdapter", true, true),
			"KINDKEY=MyAdapter\nAPI_VERSION=1.0.0\nAPI_PROTOCOL=https\nAPI_PORT=443\nREGISTRY=harbor.example.com\nREPOSITORY=/my-project/myadapter\nDIGEST=" + digest + "\n"},
	}
	for _, tt := range tests {
		t.Run(string(tt.release), func(t *testing.T) {
			p := paktest.Pak{Release: tt.release, Registry: paktest.Registry}
			if got := p.FileName(); got != tt.file {
				t.Errorf("FileName = %q, want %q", got, tt.file)
			}
			if got := strings.Join(zipMembers(t, p.Bytes()), " "); got != tt.outer {
				t.Errorf("outer members\n%s, want\n%s", got, tt.outer)
			}
			if got := strings.Join(zipMembers(t, p.AdapterZip()), " "); got != tt.inner {
				t.Errorf("inner members\n%s, want\n%s", got, tt.inner)
			}
			if tt.conf != "" && string(p.Conf()) != tt.conf {
				t.Errorf("conf\n%s, want\n%s", p.Conf(), tt.conf)
			}
			m := string(p.Manifest())
			if !strings.HasPrefix(m, "{\n    \"display_name\": \"DISPLAY_NAME\",\n    \"name\": \""+tt.manifestName+"\",\n") ||
				!strings.Contains(m, "\n    \"platform\": [\n        \"Linux Non-VA\",\n        \"Linux VA\"\n    ],\n") {
				t.Errorf("manifest.txt is not json.dump(indent=4) of the template:\n%s", m)
			}
		})
	}
	t.Run("0.x file name keeps the manifest name", func(t *testing.T) {
		if got := (paktest.Pak{Release: paktest.Release051, Name: "iSDK_X"}).FileName(); got != "iSDK_X_1.0.0.pak" {
			t.Errorf("FileName = %q", got)
		}
		if got := (paktest.Pak{Release: paktest.Release120, Name: "iSDK_X", Version: "2.3.4"}).FileName(); got != "X_2.3.4.pak" {
			t.Errorf("FileName = %q", got)
		}
	})
	t.Run("scripts, icon name and no EULA", func(t *testing.T) {
		p := paktest.Pak{Registry: paktest.Registry, Scripts: true, Icon: "my-icon.png", NoEULA: true}
		want := "manifest.txt validate.py post-install.sh pre-install.sh my-icon.png resources/ resources/resources.properties " + content + " adapter.zip"
		if got := strings.Join(zipMembers(t, p.Bytes()), " "); got != want {
			t.Errorf("outer members\n%s, want\n%s", got, want)
		}
		var m map[string]any
		if err := json.Unmarshal(p.Manifest(), &m); err != nil {
			t.Fatal(err)
		}
		if m["pak_icon"] != "my-icon.png" || m["eula_file"] != "" {
			t.Errorf("manifest pak_icon %v, eula_file %v", m["pak_icon"], m["eula_file"])
		}
		if got := zipMembers(t, p.AdapterZip()); got[2] != "my-icon.png" {
			t.Errorf("inner members %q: want the icon third, no EULA", got)
		}
		if got := strings.Join(zipMembers(t, paktest.Pak{Registry: paktest.Registry, NoIcon: true}.Bytes()), " "); strings.Contains(got, ".png") {
			t.Errorf("NoIcon: members %s", got)
		}
	})
	t.Run("CRLF and -i", func(t *testing.T) {
		if got := string(paktest.Pak{HTTP: true, CRLF: true}.Conf()); !strings.Contains(got, "API_PROTOCOL=http\r\nAPI_PORT=8080\r\nREPOSITORY=") {
			t.Errorf("conf with -i, CRLF and no registry:\n%q", got)
		}
	})
}

// TestSplitRegistry checks what each release writes for a registry string.
func TestSplitRegistry(t *testing.T) {
	tests := []struct {
		from              string
		zeroReg, zeroRepo string // 0.x and the alpha
		oneReg, oneRepo   string // 1.x
	}{
		{"harbor.example.com/proj/app", "harbor.example.com", "/proj/app", "harbor.example.com", "/proj/app"},
		{"harbor.example.com:8443/proj/app", "harbor.example.com:8443", "/proj/app", "harbor.example.com:8443", "/proj/app"},
		{"harbor.example.com/proj/app:v1", "harbor.example.com", "/proj/app:v1", "harbor.example.com", "/proj/app"},
		{"user/repo", "user", "/repo", "registry.hub.docker.com", "/user/repo"},
		{"docker.io/user/repo", "docker.io", "/user/repo", "docker.io", "/user/repo"},
		{"localhost:5000/team/app", "localhost:5000", "/team/app", "registry.hub.docker.com", "/localhost"},
		{"127.0.0.1:5000/team/app", "127.0.0.1:5000", "/team/app", "127.0.0.1:5000", "/team/app"},
	}
	for _, tt := range tests {
		for _, r := range paktest.Releases {
			reg, repo := paktest.SplitRegistry(r, tt.from)
			wantReg, wantRepo := tt.oneReg, tt.oneRepo
			if r == paktest.ReleaseAlpha || strings.HasPrefix(string(r), "0.") {
				wantReg, wantRepo = tt.zeroReg, tt.zeroRepo
			}
			if reg != wantReg || repo != wantRepo {
				t.Errorf("SplitRegistry(%s, %q) = %q, %q, want %q, %q", r, tt.from, reg, repo, wantReg, wantRepo)
			}
		}
	}
}

// TestReadReleases reads and resolves a pak of every release, for every way
// of naming a registry that release can write, as the proxy reads it.
func TestReadReleases(t *testing.T) {
	type want struct {
		ref, registry, repository string
		warn                      bool
	}
	tests := []struct {
		from string
		zero want // 0.x and the alpha
		one  want // 1.x
	}{
		{"harbor.example.com:8443/proj/sub/app",
			want{"harbor.example.com:8443/proj/sub/app@" + digest, "harbor.example.com:8443", "proj/sub/app", false},
			want{"harbor.example.com:8443/proj/sub/app@" + digest, "harbor.example.com:8443", "proj/sub/app", false}},
		{"user/app",
			want{"user/app@" + digest, "docker.io", "user/app", false},
			want{"registry.hub.docker.com/user/app@" + digest, "registry.hub.docker.com", "user/app", false}},
		{"localhost:5000/team/app",
			want{"localhost:5000/team/app@" + digest, "localhost:5000", "team/app", false},
			want{"registry.hub.docker.com/localhost@" + digest, "registry.hub.docker.com", "localhost", true}},
		{"127.0.0.1:5000/team/app",
			want{"127.0.0.1:5000/team/app@" + digest, "127.0.0.1:5000", "team/app", false},
			want{"127.0.0.1:5000/team/app@" + digest, "127.0.0.1:5000", "team/app", false}},
	}
	for _, r := range paktest.Releases {
		for _, tt := range tests {
			t.Run(string(r)+" "+tt.from, func(t *testing.T) {
				w := tt.one
				if r == paktest.ReleaseAlpha || strings.HasPrefix(string(r), "0.") {
					w = tt.zero
				}
				for _, crlf := range []bool{false, true} {
					p := paktest.Pak{Release: r, From: tt.from, CRLF: crlf}
					img, err := readBytes(p.FileName(), p.Bytes())
					if err != nil {
						t.Fatal(err)
					}
					wantConf := "adapter.zip/MyAdapter.conf"
					if r == paktest.ReleaseAlpha || strings.HasPrefix(string(r), "0.") {
						wantConf = "adapter.zip/MyAdapter_adapter3.conf"
					}
					if img.AdapterKind != "MyAdapter" || img.ConfPath != wantConf || img.PackVersion != "1.0.0" {
						t.Errorf("Read = %+v", img)
					}
					target, err := img.Resolve("")
					if err != nil {
						t.Fatal(err)
					}
					if target.Reference != w.ref || target.Registry != w.registry || target.Repository != w.repository {
						t.Errorf("Resolve = %q, registry %q, repository %q, want %q, %q, %q",
							target.Reference, target.Registry, target.Repository, w.ref, w.registry, w.repository)
					}
					if target.Reference != p.Reference("") {
						t.Errorf("Reference %q is not REGISTRY+REPOSITORY@DIGEST %q", target.Reference, p.Reference(""))
					}
					if got := len(target.Warnings) > 0; got != w.warn {
						t.Errorf("warnings %q, want some: %v", target.Warnings, w.warn)
					}
				}
			})
		}
	}
	// With --use-default-registry (1.2.0 on) there is no REGISTRY line.
	for _, r := range []paktest.Release{paktest.Release120, paktest.Release131} {
		img, err := readBytes("x.pak", paktest.Pak{Release: r}.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		if target, err := img.Resolve("registry.example.com"); err != nil || target.RegistrySource != "default" {
			t.Errorf("%s without REGISTRY: %+v, %v", r, target, err)
		}
	}
	// An alpha conf names the manifest name, which may differ from the kind.
	p := paktest.Pak{Release: paktest.ReleaseAlpha, Name: "Legacy", Registry: paktest.Registry}
	img, err := readBytes(p.FileName(), p.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if img.ConfPath != "adapter.zip/Legacy_adapter3.conf" || img.PackName != "Legacy" {
		t.Errorf("alpha pak named Legacy: %+v", img)
	}
}

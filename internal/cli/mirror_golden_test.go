//go:build linux

package cli

import (
	"context"
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/prepull/prepull/internal/golden"
	"github.com/prepull/prepull/internal/pak/paktest"
	"github.com/prepull/prepull/internal/registrytest"
)

// TestMirrorGolden runs prepull mirror in-process, through runMirror, over
// the cases its golden files show: a copy written with --out, a copy
// already there, a registry's hostile error text, a broken pak, a login
// the registry refuses, and an image for another platform; its result
// lines, then --json. The addresses, digests and times that differ per run
// are replaced with fixed ones.
func TestMirrorGolden(t *testing.T) {
	srcHost := registrytest.Start(t, hostileRepo(registrytest.New(), "/v2/proj/evil/"))
	robotHost := registrytest.Start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("WWW-Authenticate", `Basic realm="robot"`)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`)
	}))

	dir := t.TempDir()
	t.Chdir(dir)
	writeConfigFile(t, "robot.password", "not-the-password\n")
	cfg := isolatedConfig(t, dir, "registries:\n  - host: "+robotHost+"\n    username: robot\n    password_file: "+dir+"/robot.password\n")
	amd := registrytest.Push(t, srcHost+"/proj/x:latest", registrytest.Image(t, 1024, 2, "")).String()
	arm := registrytest.Push(t, srcHost+"/proj/mac:latest", registrytest.Image(t, 512, 1, "linux/arm64")).String()
	paks := []struct {
		file string
		pak  paktest.Pak
	}{
		{"MyAdapter_1.0.0.pak", paktest.Pak{Kind: "MyAdapter", Registry: srcHost, Repository: "/proj/x", Digest: amd}},
		{"監視アダプタ_1.0.pak", paktest.Pak{Kind: "JpAdapter", Registry: srcHost, Repository: "/proj/x", Digest: amd}},
		{"evil\n.pak", paktest.Pak{Kind: "Evil", Registry: srcHost, Repository: "/proj/evil", Digest: amd}},
		{"Robot.pak", paktest.Pak{Kind: "Robot", Registry: robotHost, Repository: "/proj/robot", Digest: amd}},
		{"Mac.pak", paktest.Pak{Kind: "Mac", Registry: srcHost, Repository: "/proj/mac", Digest: arm}},
	}
	args := []string{paks[0].file, paks[1].file, paks[2].file, "Broken.pak", paks[3].file, paks[4].file}
	for _, p := range paks {
		if err := p.pak.Save(p.file); err != nil {
			t.Fatal(err)
		}
	}
	writeConfigFile(t, "Broken.pak", "not a zip archive\n")

	durations := regexp.MustCompile(`"duration_ms": [0-9]+`)
	run := func(json bool) string {
		t.Helper()
		// A new mirror each run: the first pak is copied, the second found there.
		dstHost := registrytest.Start(t, nil)
		if err := os.RemoveAll("out"); err != nil {
			t.Fatal(err)
		}
		if err := os.Mkdir("out", 0o700); err != nil {
			t.Fatal(err)
		}
		flags := []string{"mirror", "--config", cfg, "--quiet", "--to", dstHost + "/dark", "--out", "out"}
		if json {
			flags = append(flags, "--json")
		}
		out, stderr, code := runWith(context.Background(), t, &globals{}, append(flags, args...)...)
		if code != ExitPlatform {
			t.Errorf("mirror (json %v): exit %d, want %d, the worst of the paks'\n%s", json, code, ExitPlatform, stderr)
		}
		return strings.NewReplacer(
			dstHost, "mirror.example.com:5000",
			srcHost, "harbor.example.com", robotHost, "robot.example.com",
			amd, testDigest, arm, paktest.DigestOf("arm64"), dir, "/etc/prepull",
		).Replace(durations.ReplaceAllString(out, `"duration_ms": 0`))
	}

	lines := run(false)
	if strings.ContainsAny(lines, "\x1b\a\r\u202e\u009b") {
		t.Errorf("mirror's lines hold raw control characters:\n%q", lines)
	}
	golden.Check(t, "mirror-lines.golden", lines)
	golden.Check(t, "mirror.json.golden", run(true))
}

// hostileRepo serves as next does, but refuses the requests under prefix
// with an error text a hostile registry might send: escapes that would
// clear the screen and reverse the line.
func hostileRepo(next http.Handler, prefix string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, prefix) {
			next.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, `{"errors":[{"code":"UNAUTHORIZED","message":"\u001b[2J\u202e"}]}`)
	})
}

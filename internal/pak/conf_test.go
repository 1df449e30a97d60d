package pak_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prepull/prepull/internal/pak"
	"github.com/prepull/prepull/internal/pak/paktest"
)

const digest = paktest.Digest

func TestParseConf(t *testing.T) {
	sdk := pak.Conf{KindKey: "MyAdapter", Registry: "harbor.example.com", Repository: "my-project/myadapter", Digest: digest}
	noRegistry := sdk
	noRegistry.Registry = ""

	tests := []struct {
		name string
		data string
		want pak.Conf
	}{
		{"sdk", string(paktest.Pak{Registry: paktest.Registry}.Conf()), sdk},
		{"no registry", string(paktest.Pak{}.Conf()), noRegistry},
		{"http", string(paktest.Pak{Registry: paktest.Registry, HTTP: true}.Conf()), sdk},
		{"crlf", string(paktest.Pak{Registry: paktest.Registry, CRLF: true}.Conf()), sdk},
		{"port", "KINDKEY=MyAdapter\nREGISTRY=harbor.example.com:8443\nREPOSITORY=/proj/sub/myadapter\nDIGEST=" + digest + "\n",
			pak.Conf{KindKey: "MyAdapter", Registry: "harbor.example.com:8443", Repository: "proj/sub/myadapter", Digest: digest}},
		{"docker.io", "KINDKEY=MyAdapter\nREGISTRY=docker.io\nREPOSITORY=/myorg/myadapter\nDIGEST=" + digest + "\n",
			pak.Conf{KindKey: "MyAdapter", Registry: "docker.io", Repository: "myorg/myadapter", Digest: digest}},
		{"hand edited", "# built by hand\n\n   KINDKEY = MyAdapter  \n\t# the registry\nREGISTRY =harbor.example.com\t\n\n" +
			"  REPOSITORY=  /my-project/myadapter\nDIGEST= " + digest + "   \nNOTE=a=b\n", sdk},
		{"bom and crlf without final newline", "\ufeffKINDKEY=MyAdapter\r\nREGISTRY=harbor.example.com\r\nREPOSITORY=/my-project/myadapter\r\nDIGEST=" + digest, sdk},
		{"unknown and lower-case keys ignored", string(paktest.Pak{Registry: paktest.Registry}.Conf()) + "registry=evil.example.com\nFOO=$(reboot)\n", sdk},
		{"repository without slash", "KINDKEY=MyAdapter\nREPOSITORY=my-project/myadapter\nDIGEST=" + digest + "\n", noRegistry},
		{"empty registry is left out", "KINDKEY=MyAdapter\nREGISTRY=\nREPOSITORY=/my-project/myadapter\nDIGEST=" + digest + "\n", noRegistry},
		{"no kindkey", "REPOSITORY=/my-project/myadapter\nDIGEST=" + digest + "\n", pak.Conf{Repository: "my-project/myadapter", Digest: digest}},
		{"localhost registry", "REGISTRY=localhost:5000\nREPOSITORY=/a\nDIGEST=" + digest + "\n", pak.Conf{Registry: "localhost:5000", Repository: "a", Digest: digest}},
		{"ipv6 registry", "REGISTRY=[::1]:5000\nREPOSITORY=/a\nDIGEST=" + digest + "\n", pak.Conf{Registry: "[::1]:5000", Repository: "a", Digest: digest}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := pak.ParseConf([]byte(tt.data))
			if err != nil {
				t.Fatalf("ParseConf: %v", err)
			}
			if got != tt.want {
				t.Errorf("ParseConf = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// conf returns a conf with key set to value, the others as the SDK writes
// them.
func conf(key, value string) string {
	return string(paktest.Pak{Registry: paktest.Registry, ExtraConf: map[string]string{key: value}}.Conf())
}

func TestParseConfErrors(t *testing.T) {
	good := string(paktest.Pak{Registry: paktest.Registry}.Conf())
	tests := []struct {
		name string
		data string
		want string
	}{
		{"no digest", strings.Replace(good, "DIGEST=", "#DIGEST=", 1), "DIGEST is missing"},
		{"empty digest", conf("DIGEST", ""), "DIGEST is empty"},
		{"no repository", strings.Replace(good, "REPOSITORY=", "#REPOSITORY=", 1), "REPOSITORY is missing"},
		{"empty repository", conf("REPOSITORY", "/"), "REPOSITORY is empty"},
		{"digest without sha256", conf("DIGEST", strings.TrimPrefix(digest, "sha256:")), "has no sha256: prefix"},
		{"digest other algorithm", conf("DIGEST", "sha512:"+strings.Repeat("ab", 64)), `uses algorithm "sha512", want sha256`},
		{"digest upper-case algorithm", conf("DIGEST", "SHA256:"+strings.Repeat("a", 64)), "sha256: in lower case"},
		{"digest too short", conf("DIGEST", digest[:len(digest)-1]), "has 63 characters after sha256:, want 64 hex digits"},
		{"digest too long", conf("DIGEST", digest+"0"), "has 65 characters"},
		{"digest upper-case hex", conf("DIGEST", "sha256:"+strings.Repeat("AB", 32)), "must use lower-case hex digits"},
		{"digest not hex", conf("DIGEST", "sha256:"+strings.Repeat("g", 64)), `has "g", not a hex digit`},
		{"digest with a space", conf("DIGEST", "sha256:"+strings.Repeat("a", 32)+" "+strings.Repeat("a", 31)), `has " ", not a hex digit`},
		{"repeated key", good + "DIGEST=" + digest + "\n", "line 8: DIGEST repeated (first on line 7)"},
		{"nul byte", "KINDKEY=My\x00Adapter\n", "contains a NUL byte at offset 10"},
		{"invalid utf-8", good + "NOTE=\xff\xfe\n", "line 8: invalid UTF-8"},
		{"overlong line", good + "NOTE=" + strings.Repeat("x", 5000) + "\n", "line 8: longer than 4096 bytes"},
		{"too big", good + strings.Repeat("# padding\n", 7000), "KiB (limit 64 KiB)"},
		{"not key=value", good + "just words\n", `line 8: not a KEY=VALUE line`},
		{"no key", "=value\n", `line 1: no key before "="`},
		{"bad kindkey", conf("KINDKEY", "My/Adapter"), `KINDKEY "My/Adapter" has "/"`},

		// Injection attempts in REPOSITORY.
		{"repository space", conf("REPOSITORY", "/my-project/my adapter"), `REPOSITORY "my-project/my adapter" contains a space or control character`},
		{"repository tab", conf("REPOSITORY", "/my-project/my\tadapter"), "contains a space or control character"},
		{"repository carriage return", conf("REPOSITORY", "/a\rb"), "contains a space or control character"},
		{"repository newline", "REPOSITORY=/a\nb\nDIGEST=" + digest, `line 2: not a KEY=VALUE line`},
		{"repository semicolon", conf("REPOSITORY", "/a;reboot"), `has ";", not allowed in a repository path`},
		{"repository command substitution", conf("REPOSITORY", "/$(reboot)"), `has "$", not allowed`},
		{"repository backtick", conf("REPOSITORY", "/a`id`"), "not allowed in a repository path"},
		{"repository pipe", conf("REPOSITORY", "/a|b"), "not allowed in a repository path"},
		{"repository traversal", conf("REPOSITORY", "/../etc/passwd"), "must not contain . or .. path components"},
		{"repository inner traversal", conf("REPOSITORY", "/a/../b"), "must not contain . or .. path components"},
		{"repository at", conf("REPOSITORY", "/a@sha256:"+strings.Repeat("a", 64)), "must not contain @"},
		{"repository tag", conf("REPOSITORY", "/a:latest"), "must not contain : (no tag, no port)"},
		{"repository upper case", conf("REPOSITORY", "/My-Project/MyAdapter"), "must be lower case"},
		{"repository double slash", conf("REPOSITORY", "//a"), "has an empty path component"},
		{"repository trailing slash", conf("REPOSITORY", "/a/"), "has an empty path component"},
		{"repository leading dash", conf("REPOSITORY", "/-a"), "is not a valid repository path"},
		{"repository double dot separator", conf("REPOSITORY", "/a..b"), "is not a valid repository path"},
		{"repository unicode", conf("REPOSITORY", "/adaptér"), `has "é"`},
		{"repository too long", conf("REPOSITORY", "/"+strings.Repeat("a", 256)), "is longer than 255 bytes"},

		// Injection attempts and mistakes in REGISTRY.
		{"registry semicolon", conf("REGISTRY", "harbor.example.com;reboot"), `REGISTRY "harbor.example.com;reboot" is not a valid registry host`},
		{"registry command substitution", conf("REGISTRY", "$(reboot).example.com"), "is not a valid registry host"},
		{"registry space", conf("REGISTRY", "harbor example.com"), "contains a space or control character"},
		{"registry url", conf("REGISTRY", "https://harbor.example.com"), "not a URL"},
		{"registry path", conf("REGISTRY", "harbor.example.com/proj"), "without a path"},
		{"registry at", conf("REGISTRY", "user@harbor.example.com"), "must not contain @"},
		{"registry no dot, upper case", conf("REGISTRY", "Harbor"), `"Harbor" is neither a registry host (it needs a dot or a port, or must be localhost) nor a Docker Hub namespace (lower-case letters, digits and separators)`},
		{"registry no dot, bad namespace", conf("REGISTRY", "my_-team"), "nor a Docker Hub namespace"},
		{"registry bad port", conf("REGISTRY", "harbor.example.com:99999"), "has an invalid port"},
		{"registry zero port", conf("REGISTRY", "harbor.example.com:0"), "has an invalid port"},
		{"registry quoted", conf("REGISTRY", `"harbor.example.com"`), "is not a valid registry host"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := pak.ParseConf([]byte(tt.data))
			if err == nil {
				t.Fatalf("ParseConf succeeded, want error containing %q", tt.want)
			}
			if !errors.Is(err, pak.ErrInvalid) {
				t.Errorf("error %q does not wrap ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
			if strings.ContainsAny(err.Error(), "\n\r\x00") {
				t.Errorf("error %q holds raw control characters", err)
			}
		})
	}
}

func TestValidateRegistry(t *testing.T) {
	tests := []struct {
		host string
		ok   bool
	}{
		{"harbor.example.com", true},
		{"harbor.example.com:8443", true},
		{"docker.io", true},
		{"index.docker.io", true},
		{"localhost", true},
		{"localhost:5000", true},
		{"192.168.1.10:5000", true},
		{"[::1]:5000", true},
		{"Harbor.Example.com", true},
		{"", false},
		{"harbor", false},
		{"harbor.example.com/", false},
		{"harbor.example.com:", false},
		{"harbor.example.com:x", false},
		{"-harbor.example.com", false},
		{"harbor.example.com\n", false},
		{"oci://harbor.example.com", false},
	}
	for _, tt := range tests {
		err := pak.ValidateRegistry(tt.host)
		if (err == nil) != tt.ok {
			t.Errorf("ValidateRegistry(%q) = %v, want ok %v", tt.host, err, tt.ok)
		}
	}
}

// TestParseConfDoesNotEchoContent guards against printing a file that is not
// a .conf, such as a password file given by mistake.
func TestParseConfDoesNotEchoContent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "registry.password")
	if err := os.WriteFile(path, []byte("hunter2-s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := open(path)
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("error %v must not contain the file's content", err)
	}
}

package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLoadExplainsMistakes loads configurations with the mistakes a new
// administrator makes, and checks that each error says where and what,
// with the key most likely meant.
func TestLoadExplainsMistakes(t *testing.T) {
	tests := []struct {
		name, yaml string
		env        map[string]string
		want       []string // in the error, besides the file name
		notWant    string
	}{
		{name: "registry for registries", yaml: "registry:\n  - host: a.example\n",
			want: []string{`line 1: unknown key "registry": did you mean registries?`}},
		{name: "a misspelt key", yaml: "timeout: 1m\ntimout: 2m\n",
			want: []string{`line 2: unknown key "timout": did you mean timeout?`}},
		{name: "a dotted key", yaml: "docker.host: unix:///x.sock\n",
			want: []string{`line 1: unknown key "docker.host": did you mean docker_host?`}},
		{name: "an unknown key with no near one", yaml: "colour: blue\n",
			want: []string{`line 1: unknown key "colour" (known: docker_host, `}},
		{name: "a misspelt key in an entry", yaml: "registries:\n  - host: a.example\n    usename: x\n    password: y\n",
			want: []string{`line 3: unknown key "registries[0].usename": did you mean username?`,
				`line 4: unknown key "registries[0].password": did you mean password_file, password_env or password_command?`}},
		{name: "registries as a map keyed by host", yaml: "timeout: 1m\nregistries:\n  127.0.0.1:5000:\n    username: x\n",
			want:    []string{`line 2: registries is a map keyed by host ("127.0.0.1:5000"), but it must be a list`, "- host: 127.0.0.1:5000"},
			notWant: "invalid keys: 127"},
		{name: "registries as a string", yaml: "registries: harbor.example.com\n",
			want: []string{`line 1: registries must be a list of entries (- host: ...), not the value "harbor.example.com"`}},
		{name: "an entry that is a host", yaml: "registries:\n  - harbor.example.com\n",
			want: []string{`line 2: registries[0] must be a mapping (host:, username:, ...), not the value "harbor.example.com"`}},
		{name: "an indentation error on line 4", yaml: "timeout: 1m\nregistries:\n  - host: a.example\n   username: x\n",
			want: []string{"line 4: did not find expected '-' indicator", "check the indentation of line 4"}},
		{name: "a mapping indented too far on line 5", yaml: "timeout: 1m\nregistries:\n- host: a\n  username: x\n    password_file: y\n",
			want: []string{"line 5: mapping values are not allowed in this context"}},
		{name: "a tab", yaml: "timeout: 1m\n\tsettle: 2s\n", want: []string{"line 2: found a tab character"}},
		{name: "an unclosed list", yaml: "timeout: [1m\n", want: []string{"line 1: did not find expected ',' or ']' (not valid YAML)"}},
		{name: "a duration without its unit", yaml: "settle: 2s\ntimeout: 600\n",
			want: []string{`line 2: timeout "600": not a duration (e.g. 90s, 10m, 1h)`}},
		{name: "a count that is no number", yaml: "concurrency: two\n",
			want: []string{`line 1: concurrency "two": not a whole number`}},
		{name: "a list for a value", yaml: "docker_host:\n  - unix:///a.sock\n",
			want: []string{`line 1: docker_host must be a single value, not a list`}},
		{name: "a bad duration in the environment", yaml: "timeout: 1m\n", env: map[string]string{"PREPULL_TIMEOUT": "bogus"},
			want: []string{`environment variable PREPULL_TIMEOUT="bogus": not a duration`}, notWant: "config.yaml"},
		{name: "a bad number in the environment", yaml: "", env: map[string]string{"PREPULL_CONCURRENCY": "two"},
			want: []string{`environment variable PREPULL_CONCURRENCY="two": not a whole number`}, notWant: "config.yaml"},
		{name: "a list in the environment", yaml: "registries:\n  - host: a.example\n", env: map[string]string{"PREPULL_REGISTRIES": "secret-ish"},
			want: []string{"environment variable PREPULL_REGISTRIES is set, but registries can only be written in the configuration file"}, notWant: "secret-ish"},
		{name: "a bad value in the environment", yaml: "timeout: 1m\n", env: map[string]string{"PREPULL_LOG_FORMAT": "xml"},
			want: []string{`config.yaml (with PREPULL_LOG_FORMAT="xml"): invalid configuration: log_format "xml"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			path := filepath.Join(t.TempDir(), "config.yaml")
			if err := os.WriteFile(path, []byte(tt.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := Load(path)
			if err == nil || !errors.Is(err, ErrInvalid) {
				t.Fatalf("Load = %v, want an invalid configuration", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error:\n%v\nwant %q in it", err, w)
				}
			}
			if tt.notWant != "" && strings.Contains(err.Error(), tt.notWant) {
				t.Errorf("error:\n%v\nmust not hold %q", err, tt.notWant)
			}
		})
	}
}

func TestLoadAcceptsWhatIsFine(t *testing.T) {
	for name, y := range map[string]string{
		"empty":              "",
		"comments only":      "# nothing\n",
		"upper-case keys":    "Timeout: 1m\n",
		"registries null":    "registries:\n",
		"registries empty":   "registries: []\n",
		"a full entry":       "registries:\n  - host: a.example:5000\n    username: u\n    password_file: /p\n    ca_file: /ca.pem\n",
		"flow style entries": "registries: [{host: a.example, username: u, password_env: P}]\n",
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "config.yaml")
			if err := os.WriteFile(path, []byte(y), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := Load(path); err != nil {
				t.Fatalf("Load: %v", err)
			}
		})
	}
}

func TestSuggest(t *testing.T) {
	for key, want := range map[string]string{
		"registry": "registries", "registires": "registries", "timout": "timeout", "stall-timeout": "stall_timeout",
		"loglevel": "", "x": "", "watchdir": "watch_dir", "ca": "",
	} {
		got := strings.Join(suggest(key, append(topKeys, registryKeys...)), ",")
		if got != want {
			t.Errorf("suggest(%q) = %q, want %q", key, got, want)
		}
	}
}

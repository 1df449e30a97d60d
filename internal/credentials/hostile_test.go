package credentials

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestHelperFailureHidesSecret runs hostile credential helpers that fail
// after printing a login, or hand their standard output to a child that
// outlives them: the error must say why without quoting what may hold the
// secret, and keep the short reasons helpers print by protocol.
func TestHelperFailureHidesSecret(t *testing.T) {
	bin := helperPATH(t)
	script(t, bin, "docker-credential-jsonfail", `read host; printf '{"ServerURL":"%s","Username":"u","Secret":"topsecret-json"}' "$host"; exit 1`)
	script(t, bin, "docker-credential-fieldfail", `echo 'Username=u "Secret": "topsecret-field"'; exit 1`)
	script(t, bin, "docker-credential-secondline", `echo 'pass not initialized'; echo 'topsecret-second-line'; exit 1`)
	script(t, bin, "docker-credential-long", `printf 'reason %0300d topsecret-long-tail\n' 0; exit 1`)
	script(t, bin, "docker-credential-escape", "printf 'locked \\033]0;owned\\007 keyring\\n'; exit 1")
	// The helper prints a login and leaves a child holding its standard
	// output: Go ends the wait after WaitDelay with the output read so far.
	script(t, bin, "docker-credential-child", `read host; printf '{"ServerURL":"%s","Username":"u","Secret":"topsecret-child"}' "$host"; sleep 30 &`)
	dir := t.TempDir()
	write(t, filepath.Join(dir, "config.json"), `{"credHelpers": {
		"json.example": "jsonfail", "field.example": "fieldfail", "second.example": "secondline",
		"long.example": "long", "escape.example": "escape", "child.example": "child"}}`, 0o600)
	r := &Resolver{DockerConfigDir: dir}
	hidden := "the helper's output is not shown: it may hold a secret"
	for host, want := range map[string]string{
		"json.example":   hidden,
		"field.example":  hidden,
		"child.example":  hidden,
		"second.example": "out: `pass not initialized`",
		"long.example":   "out: `reason 000",
		"escape.example": `locked \x1b]0;owned\a keyring`,
	} {
		t.Run(host, func(t *testing.T) {
			_, err := r.For(t.Context(), host)
			if err != nil && (strings.Contains(err.Error(), "topsecret") || strings.Contains(err.Error(), "\033")) {
				t.Errorf("the error shows the helper's output: %q", err)
			}
			wantUnavailable(t, host, err, want)
		})
	}
}

// TestCommandEnvironmentNeverInherits: with no allowed variable set and no
// passwd entry for the user, a command still gets an empty environment,
// never prepull's whole one (an exec.Cmd with a nil Env inherits it).
func TestCommandEnvironmentNeverInherits(t *testing.T) {
	saved := os.Environ()
	t.Cleanup(func() {
		os.Clearenv()
		for _, kv := range saved {
			k, v, _ := strings.Cut(kv, "=")
			os.Setenv(k, v)
		}
	})
	os.Clearenv()
	os.Setenv("OTHER_REGISTRY_PW", "topsecret-inherited")
	lookupHome = func() (string, error) { return "", errors.New("no passwd entry") }
	t.Cleanup(func() { lookupHome = currentHome })
	out, err := runCommand(t.Context(), nil, 10*time.Second, []string{"/usr/bin/env"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "topsecret") {
		t.Fatalf("the command inherited prepull's environment:\n%s", out)
	}
}

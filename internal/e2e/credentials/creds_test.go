//go:build linux

package credentials

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prepull/prepull/internal/e2e"
	"github.com/prepull/prepull/internal/pak/paktest"
	"github.com/prepull/prepull/internal/testenv"
)

// passStore is a pass password store of the test's own, encrypted to a GPG
// key without a passphrase made for the test: what docker-credential-pass
// reads. env points pass and gpg at it, and puts the pass and helper that
// scripts/test.sh unpacked (testenv.ToolsDir) first on PATH.
type passStore struct {
	t   *testing.T
	env []string
}

// newPassStore makes the key and the store; the key's gpg-agent is stopped
// when the test ends.
func newPassStore(t *testing.T) *passStore {
	t.Helper()
	path := testenv.ToolsPath(t)
	dir := t.TempDir()
	gnupg := filepath.Join(dir, "gnupg")
	if err := os.Mkdir(gnupg, 0o700); err != nil {
		t.Fatal(err)
	}
	s := &passStore{t: t, env: []string{"PATH=" + path, "GNUPGHOME=" + gnupg, "PASSWORD_STORE_DIR=" + filepath.Join(dir, "store")}}
	t.Cleanup(func() { _, _ = s.run(nil, "gpgconf", "--kill", "gpg-agent") })
	const uid = "prepull-test@example.invalid"
	s.must(nil, "gpg", "--batch", "--passphrase", "", "--quick-gen-key", uid, "default", "default", "never")
	s.must(nil, "pass", "init", uid)
	return s
}

func (s *passStore) run(stdin *strings.Reader, name string, args ...string) (string, error) {
	// exec.Command looks name up in the test's own PATH: the unpacked
	// program, when there is one, is the one meant.
	if p := filepath.Join(testenv.ToolsDir, "bin", name); fileExists(p) {
		name = p
	}
	cmd := exec.Command(name, args...)
	cmd.Env = append([]string{"HOME=" + s.t.TempDir()}, s.env...)
	if stdin != nil {
		cmd.Stdin = stdin
	}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (s *passStore) must(stdin *strings.Reader, name string, args ...string) {
	s.t.Helper()
	if out, err := s.run(stdin, name, args...); err != nil {
		s.t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// store saves a login for host through docker-credential-pass itself, as
// docker login with credsStore pass would.
func (s *passStore) store(host, user, password string) {
	s.t.Helper()
	body, err := json.Marshal(map[string]string{"ServerURL": host, "Username": user, "Secret": password})
	if err != nil {
		s.t.Fatal(err)
	}
	s.must(strings.NewReader(string(body)), "docker-credential-pass", "store")
}

// writeScript writes an executable shell script and returns its path.
func writeScript(t *testing.T, path, body string) string {
	t.Helper()
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body), 0o700); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestCredsStorePass pulls with the login Debian's docker-credential-pass
// holds, from a pass store and GPG key made for the test: the one-shot, then
// the agent. A credHelpers entry for the host wins over credsStore.
func TestCredsStorePass(t *testing.T) {
	f := e2e.NewFixture(t, "proj/creds-pass")
	store := newPassStore(t)
	f.Env = append(f.Env, store.env...)
	store.store(f.Reg.Addr, "alice", f.Password)
	f.WriteDockerConfig(`{"credsStore": "pass"}`)
	config := f.WriteConfig("registries: []\n")

	res := f.OnePull(config, 0)
	if res.Status != "pulled" || res.CredentialSource != "docker config "+filepath.Join(f.DockerConfigDir, "config.json")+" (credsStore docker-credential-pass)" {
		t.Fatalf("one-shot: %+v, want pulled with the login of credsStore docker-credential-pass", res)
	}

	// The agent, with the same store.
	f.Docker.RemoveImage(t, f.Ref)
	agentConf, inbox, state := f.AgentConfig("registries: []\n")
	a := f.StartAgent(agentConf, inbox, state)
	a.Drop(f.Pak, "pass.pak")
	a.Eventually("pass.pak is in done/", func() bool { return a.InDone("pass.pak") })
	if n := a.CountLogs("using registry credentials", map[string]string{"credential_source": res.CredentialSource}); n == 0 {
		t.Errorf("the agent did not log in with credsStore docker-credential-pass")
	}
	a.Terminate()

	// pass now holds a wrong password for the host; a credHelpers entry
	// for it names a helper that has the right one, and wins.
	store.store(f.Reg.Addr, "alice", "wrong-"+f.Password)
	bin := f.HelperBin()
	writeScript(t, filepath.Join(bin, "docker-credential-prepull-e2e"),
		fmt.Sprintf(`read host; printf '{"ServerURL":"%%s","Username":"alice","Secret":"%s"}' "$host"`, f.Password))
	f.WriteDockerConfig(fmt.Sprintf(`{"credsStore": "pass", "credHelpers": {%q: "prepull-e2e"}}`, f.Reg.Addr))
	f.Docker.RemoveImage(t, f.Ref)
	res = f.OnePull(config, 0)
	if res.Status != "pulled" || !strings.HasSuffix(res.CredentialSource, "(credHelpers docker-credential-prepull-e2e)") {
		t.Fatalf("with credHelpers: %+v, want pulled with docker-credential-prepull-e2e", res)
	}

	// Without the credHelpers entry, pass's wrong password is rejected.
	f.WriteDockerConfig(`{"credsStore": "pass"}`)
	f.Docker.RemoveImage(t, f.Ref)
	if res = f.OnePull(config, 4); !strings.Contains(res.Error, "credsStore docker-credential-pass") {
		t.Errorf("a rejected login from pass: %+v, want exit 4 naming credsStore docker-credential-pass", res)
	}
}

// TestCredentialHelperFailures: a helper that is missing, fails or
// answers garbage is exit 2 naming the helper and the host, before any
// pull; a helper never sees a password_env secret or anything else of
// prepull's environment it was not meant to have.
func TestCredentialHelperFailures(t *testing.T) {
	f := e2e.NewFixture(t, "proj/creds-helpers")
	bin := f.HelperBin()
	dump := filepath.Join(f.Dir, "helper.env")
	writeScript(t, filepath.Join(bin, "docker-credential-fails"), `echo "pass store is locked"; echo "gpg: decryption failed: No secret key" >&2; exit 1`)
	writeScript(t, filepath.Join(bin, "docker-credential-garbage"), `printf 'not a login\n'`)
	writeScript(t, filepath.Join(bin, "docker-credential-dump"),
		fmt.Sprintf(`env > %q; read host; printf '{"ServerURL":"%%s","Username":"alice","Secret":"%s"}' "$host"`, dump, f.Password))
	const secret = "other-registry-secret-d41d8cd9"
	f.Env = append(f.Env, "OTHER_REGISTRY_PW="+secret, "AWS_REGION=eu-west-1", "PASSWORD_STORE_DIR=/nonexistent/store", "SOME_TOKEN=unrelated-d41d8cd9")
	config := f.WriteConfig("registries: [{host: other.example, username: bob, password_env: OTHER_REGISTRY_PW}]\n")
	conf := filepath.Join(f.DockerConfigDir, "config.json")

	for _, tt := range []struct{ helper, want string }{
		{"missing", "docker-credential-missing is not installed (not found in PATH)"},
		{"fails", "error getting credentials - err: exit status 1; its stderr: gpg: decryption failed: No secret key, out: `pass store is locked`"},
		{"garbage", "docker-credential-garbage answered something other than a login (JSON with Username and Secret)"},
	} {
		t.Run(tt.helper, func(t *testing.T) {
			f.WriteDockerConfig(fmt.Sprintf(`{"credsStore": "pass", "credHelpers": {%q: %q}}`, f.Reg.Addr, tt.helper))
			res := f.OnePull(config, 2)
			want := fmt.Sprintf("%s: credHelpers docker-credential-%s for %s: credential unavailable: %s", conf, tt.helper, f.Reg.Addr, tt.want)
			if res.Status != "failed" || !strings.Contains(res.Error, want) {
				t.Errorf("result %+v, want failed with %q", res, want)
			}
			if f.Docker.HasImage(t, f.Ref) {
				t.Errorf("the image was pulled despite the failing helper")
			}
		})
	}

	// Without a network, as under the hardened unit, the failure says so
	// and names the drop-in that lifts it.
	t.Run("no network", func(t *testing.T) {
		if _, err := exec.LookPath("unshare"); err != nil {
			t.Fatalf("unshare not found: install the Debian package util-linux")
		}
		f.WriteDockerConfig(fmt.Sprintf(`{"credHelpers": {%q: "fails"}}`, f.Reg.Addr))
		cmd := exec.Command("unshare", "--net", "--", testenv.Prepull(t), "--config", config, f.Pak)
		cmd.Env = f.CleanEnv()
		out, err := cmd.CombinedOutput()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 2 || !strings.Contains(string(out), "install.sh --network-logins") {
			t.Errorf("a failing helper without a network: %v, want exit 2 naming install.sh --network-logins:\n%s", err, out)
		}
	})

	f.WriteDockerConfig(`{"credsStore": "dump"}`)
	if res := f.OnePull(config, 0); res.Status != "pulled" {
		t.Fatalf("with the dumping helper: %+v", res)
	}
	data, err := os.ReadFile(dump)
	if err != nil {
		t.Fatal(err)
	}
	env := string(data)
	for _, want := range []string{"PATH=" + bin, "HOME=" + f.Dir, "AWS_REGION=eu-west-1", "PASSWORD_STORE_DIR=/nonexistent/store"} {
		if !strings.Contains(env, want+"\n") && !strings.Contains(env, want+string(os.PathListSeparator)) {
			t.Errorf("the helper's environment lacks %s:\n%s", want, env)
		}
	}
	for _, leak := range []string{secret, "OTHER_REGISTRY_PW", "d41d8cd9"} {
		if strings.Contains(env, leak) {
			t.Errorf("the helper saw %s:\n%s", leak, env)
		}
	}
}

// TestPasswordCommandTokenRotation stands in for AWS ECR: the registry's
// accepted password is rotated while the agent runs, as a 12-hour ECR token
// expires, and password_command (standing in for aws ecr
// get-login-password) prints the current token. The one-shot and the agent
// ask it at every login; a token the registry rejects is replaced by a
// fresh one at once; the image stays present across the rotations.
func TestPasswordCommandTokenRotation(t *testing.T) {
	f := e2e.NewFixture(t, "proj/creds-rotation")
	// The command prints the first line of its queue, dropping it while
	// more follow, and counts its runs.
	queue := filepath.Join(f.Dir, "tokens")
	runs := filepath.Join(f.Dir, "runs")
	command := writeScript(t, filepath.Join(f.Dir, "get-login-password"), fmt.Sprintf(`echo run >> %[2]q
head -n 1 %[1]q
if [ "$(wc -l < %[1]q)" -gt 1 ]; then sed -i 1d %[1]q; fi
`, queue, runs))
	setTokens := func(tokens ...string) {
		t.Helper()
		if err := os.WriteFile(queue, []byte(strings.Join(tokens, "\n")+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	countRuns := func() int {
		data, _ := os.ReadFile(runs)
		return strings.Count(string(data), "run\n")
	}
	token1, token2, token3 := f.Password, "token2-"+e2e.RandomWord(t), "token3-"+e2e.RandomWord(t)
	setTokens(token1)
	login := fmt.Sprintf("registries: [{host: %q, username: alice, password_command: [%q]}]\n", f.Reg.Addr, command)

	// A command that fails: exit 2, its stderr shown, never its output.
	failing := writeScript(t, filepath.Join(f.Dir, "failing"), "echo partial-output-d41d8cd9\necho 'Unable to locate credentials. You can configure credentials by running \"aws configure\".' >&2\nexit 253\n")
	r := f.Prepull(nil, "--config", f.WriteConfig(fmt.Sprintf("registries: [{host: %q, username: AWS, password_command: [%q]}]\n", f.Reg.Addr, failing)), f.Pak)
	r.Want(t, 2)
	want := fmt.Sprintf("registries entry for %s: password_command %s: credential unavailable: exit status 253; its stderr: Unable to locate credentials.", f.Reg.Addr, failing)
	if !strings.Contains(r.Stderr+r.Stdout, want) || strings.Contains(r.Stderr+r.Stdout, "partial-output") {
		t.Errorf("a failing password_command: want %q and not its output:\n%s%s", want, r.Stdout, r.Stderr)
	}

	// The one-shot asks the command once per login.
	res := f.OnePull(f.WriteConfig(login), 0)
	if res.Status != "pulled" || res.CredentialSource != "password_command "+command || countRuns() != 1 {
		t.Fatalf("one-shot: %+v after %d runs, want pulled with password_command after 1 run", res, countRuns())
	}
	f.Docker.RemoveImage(t, f.Ref)

	config, inbox, state := f.AgentConfig(login + "verify_interval: 1s\n")
	a := f.StartAgent(config, inbox, state)
	a.Drop(f.Pak, "ecr.pak")
	a.Eventually("ecr.pak is in done/", func() bool { return a.InDone("ecr.pak") })
	pulls := func() int {
		s := a.ReadState()
		if len(s.Images) != 1 || s.Images[0].Status != "present" {
			return 0
		}
		return s.Images[0].Pulls
	}

	// Rotation: the registry accepts only token2, which the command now
	// prints. The image vanishes; the agent pulls it with the new token.
	f.Reg.SetPassword(t, token2)
	setTokens(token2)
	f.Docker.RemoveImage(t, f.Ref)
	a.Eventually("the image is pulled again with token2", func() bool { return pulls() == 2 })

	// The registry moves on to token3 while the command still prints the
	// expired token2 once: the registry rejects it, and the agent asks
	// again at once and logs in with token3, within the same try.
	f.Reg.SetPassword(t, token3)
	setTokens(token2, token3)
	before := countRuns()
	f.Docker.RemoveImage(t, f.Ref)
	a.Eventually("the image is pulled again with token3", func() bool { return pulls() == 3 })
	if n := countRuns() - before; n != 2 {
		t.Errorf("the command ran %d times for the last pull, want 2 (the rejected token, then the fresh one)", n)
	}
	if a.CountLogs("registry rejected the login, asking its source for a fresh one", map[string]string{"credential_source": "password_command " + command}) != 1 {
		t.Errorf("no log line says the rejected token was replaced")
	}
	if s := a.ReadState(); s.Images[0].LastError != "" {
		t.Errorf("the image keeps the error %q", s.Images[0].LastError)
	}
	for _, tok := range []string{token2, token3} {
		if strings.Contains(a.LogText(), tok) {
			t.Errorf("a token appears in the agent's log")
		}
	}
	if !f.Docker.HasImage(t, f.Ref) {
		t.Errorf("%s is not in the engine", f.Ref)
	}
}

// TestECRHelperWithoutAWS runs Amazon's real docker-credential-ecr-login
// (Debian's amazon-ecr-credential-helper) for an ECR host named in
// credHelpers. These machines reach no AWS endpoint, so the helper gets no
// token and answers "not found", as it does for every failure: prepull stops
// with exit 2 naming the helper and the host instead of pulling anonymously.
func TestECRHelperWithoutAWS(t *testing.T) {
	path := testenv.ToolsPath(t)
	f := &e2e.Fixture{T: t, Dir: t.TempDir(), Password: "unused-" + e2e.RandomWord(t), Docker: testenv.Docker(t)}
	f.DockerConfigDir = filepath.Join(f.Dir, "docker")
	if err := os.MkdirAll(f.DockerConfigDir, 0o700); err != nil {
		t.Fatal(err)
	}
	const host = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
	pak := paktest.Pak{Kind: "EcrAdapter", Registry: host, Repository: "/vcfops/ecr-adapter"}.WriteFile(t, f.Dir)
	f.WriteDockerConfig(fmt.Sprintf(`{"credHelpers": {%q: "ecr-login"}}`, host))
	f.Env = append(f.Env, "PATH="+path, "AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE", "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
		"AWS_REGION=eu-west-1", "AWS_EC2_METADATA_DISABLED=true")
	r := f.Prepull(nil, "--json", "--config", f.WriteConfig("registries: []\n"), pak)
	r.Want(t, 2)
	rs := r.Results(t)
	want := "credHelpers docker-credential-ecr-login for " + host + ": credential unavailable: the helper has no login for it"
	if len(rs) != 1 || rs[0].Status != "failed" || !strings.Contains(rs[0].Error, want) {
		t.Fatalf("results %+v, want failed with %q", rs, want)
	}
}

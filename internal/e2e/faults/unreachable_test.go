//go:build linux

package faults

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prepull/prepull/internal/e2e"
	"github.com/prepull/prepull/internal/pull"
)

// TestFaultRegistryUnreachable: with the registry down, the one-shot and
// mirror give up after pull.DefaultRegistryAttempts attempts in a row (the
// count is asserted, not the time) and exit 8, naming the host, the
// address tried, the system's error and, for the one-shot, the engine's
// proxy settings.
func TestFaultRegistryUnreachable(t *testing.T) {
	f := e2e.NewFixture(t, "proj/fault-unreachable")
	f.Reg.Stop(t)
	retries := pull.DefaultRegistryAttempts - 1

	r := f.Prepull(nil, "--config", f.Config, "--json", f.Pak)
	r.Want(t, 8)
	res := e2e.OneResult(t, r)
	want := fmt.Sprintf("registry %s unreachable: Docker Engine tried %s: connect: connection refused (%d attempts); the Docker Engine, not prepull, connects to the registry, so its proxy settings apply (systemctl show docker -p Environment)",
		f.Reg.Addr, f.Reg.Addr, pull.DefaultRegistryAttempts)
	if res.Status != "failed" || !strings.Contains(res.Error, want) {
		t.Errorf("one-shot: %+v\nwant failed with %q", res, want)
	}
	if n := strings.Count(r.Stderr, "login failed, will retry"); n != retries {
		t.Errorf("one-shot: %d retries logged, want %d:\n%s", n, retries, r.Stderr)
	}

	m := f.Prepull(nil, "--config", f.Config, "--json", "mirror", "--to", "127.0.0.1:9/dc1", f.Pak)
	m.Want(t, 8)
	if n := strings.Count(m.Stderr, "mirror failed, will retry"); n != retries {
		t.Errorf("mirror: %d retries logged, want %d:\n%s", n, retries, m.Stderr)
	}
	if !strings.Contains(m.Stdout, "unreachable: prepull tried 127.0.0.1:9: connect: connection refused") || !strings.Contains(m.Stdout, "HTTPS_PROXY") {
		t.Errorf("mirror's result does not name the address, the error and the proxy settings that apply:\n%s", m.Stdout)
	}
}

// TestFaultRegistryNameNotFound: a registry whose name does not resolve
// fails the one-shot and mirror at their first attempt with exit 8, naming
// the host, the resolver's answer and that the name does not resolve.
func TestFaultRegistryNameNotFound(t *testing.T) {
	f := e2e.NewFixture(t, "proj/fault-nxdomain")
	const host = "nosuchhost.invalid:5000"
	pak, _ := f.PakVia(host, f.Repo, f.Digest)

	r := f.Prepull(nil, "--config", f.Config, "--json", pak)
	r.Want(t, 8)
	res := e2e.OneResult(t, r)
	if res.Status != "failed" || !strings.Contains(res.Error, "registry "+host+" unreachable: Docker Engine looked up nosuchhost.invalid") ||
		!strings.Contains(res.Error, "no such host (the name does not resolve)") {
		t.Errorf("one-shot: %+v\nwant failed naming the host, the lookup and its answer", res)
	}
	if strings.Contains(r.Stderr, "will retry") {
		t.Errorf("one-shot: a name that does not resolve was retried:\n%s", r.Stderr)
	}

	m := f.Prepull(nil, "--config", f.Config, "--json", "mirror", "--to", host+"/dc1", f.Pak)
	m.Want(t, 8)
	if strings.Contains(m.Stderr, "will retry") {
		t.Errorf("mirror: a name that does not resolve was retried:\n%s", m.Stderr)
	}
	if !strings.Contains(m.Stdout, "unreachable: prepull looked up nosuchhost.invalid") || !strings.Contains(m.Stdout, "no such host (the name does not resolve)") {
		t.Errorf("mirror's result does not name the lookup and its answer:\n%s", m.Stdout)
	}
}

// TestFaultDockerSocketMissing: a Docker socket that does not exist fails
// the one-shot at once with exit 6 and a hint, without a retry.
func TestFaultDockerSocketMissing(t *testing.T) {
	f := e2e.NewFixture(t, "proj/fault-nosocket")
	sock := f.Dir + "/no/docker.sock"
	start := time.Now()
	r := f.Prepull(nil, "--config", f.Config, "--docker-host", "unix://"+sock, "--json", f.Pak)
	r.Want(t, 6)
	res := e2e.OneResult(t, r)
	if !strings.Contains(res.Error, "no Docker socket at "+sock) || !strings.Contains(res.Error, "systemctl status docker") {
		t.Errorf("result %+v, want the missing socket named with a hint", res)
	}
	if strings.Contains(r.Stderr, "will retry") {
		t.Errorf("a missing socket was retried (%v):\n%s", time.Since(start), r.Stderr)
	}
}

//go:build linux

package faults

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prepull/prepull/internal/e2e"
	"github.com/prepull/prepull/internal/retry"
	"github.com/prepull/prepull/internal/testenv"
)

// The fault tests of issue 5: each fault against the real Docker Engine and
// registry, through testenv's FaultProxy where the fault is on the wire,
// running the real prepull binary. docs/reliability.md records what each
// one showed. None runs in parallel (no e2e test does):
// TestFaultEngineRestartedUnderAgent restarts the shared engine.
//
//	PREPULL_E2E=1 go test -race -count=1 ./internal/e2e/... -run 'Fault' -v

// logRequests logs every request the proxy saw and their summary: the
// record of what the engine did under the fault.
func logRequests(t *testing.T, p *testenv.FaultProxy) {
	t.Helper()
	var b strings.Builder
	for _, r := range p.Requests() {
		path := r.Path
		if i := strings.LastIndex(path, "/sha256:"); i >= 0 && len(path) > i+20 {
			path = path[:i+20] + "…"
		}
		fault := ""
		if r.Fault != "" {
			fault = "  fault " + r.Fault
		}
		fmt.Fprintf(&b, "\t%7.3fs %s %-8s %s %d%s\n", r.At.Seconds(), r.Method, r.Kind, path, r.Status, fault)
	}
	t.Logf("proxy: %s; stalls %+v\n%s", p.Summary(), p.Stalls(), b.String())
}

// TestFaultRegistryStoppedMidPull stops the registry while the engine is
// downloading the layers (slowed down by the proxy so that the pull has a
// middle) and starts it again 3 s later: the pull ends with the image.
//
// The layers are 8 MiB: loopback lets the registry write up to about 4 MiB
// ahead of a slow reader into its socket buffer, which a stop does not cut.
func TestFaultRegistryStoppedMidPull(t *testing.T) {
	f := e2e.NewFixture(t, "proj/fault-stopped")
	digest := f.Docker.PushImage(t, f.Reg, "proj/fault-stopped-big", testenv.ImageOptions{Size: 16 << 20, Layers: 2})
	p := testenv.StartFaultProxy(t, f.Reg.Addr)
	p.Throttle(2 << 20) // 4 s for each layer
	pak, ref := f.PakVia(p.Addr, "proj/fault-stopped-big", digest)
	cfg := f.WriteConfig(f.LoginFor(p.Addr))

	start := time.Now()
	done := f.PrepullAsync("--config", cfg, "--json", "--timeout", "60s", pak)
	e2e.WaitUntil(t, "the layers download", func() bool { return p.Count(testenv.KindBlob) >= 3 })
	// Mid-download: a MiB of the 16 sent, far from the 4 MiB a stop leaves.
	e2e.WaitUntil(t, "a MiB of the layers is sent", func() bool { return p.BlobBytes() >= 1<<20 })
	f.Reg.Stop(t)
	stopped := time.Since(start)
	f.Reg.StartAfter(t, 3*time.Second)
	r, ok := <-done
	if !ok {
		t.FailNow()
	}
	logRequests(t, p)
	t.Logf("registry stopped %.1fs after the start, for 3 s; prepull took %v\nstderr:\n%s", stopped.Seconds(), time.Since(start), r.Stderr)
	r.Want(t, 0)
	if res := e2e.OneResult(t, r); res.Status != "pulled" {
		t.Fatalf("result %+v, want pulled", res)
	}
	if !f.Docker.HasImage(t, ref) {
		t.Fatalf("%s is not in the engine", ref)
	}
	// The engine fetches each blob again (from where it was cut, or anew).
	if n := p.Count(testenv.KindBlob); n <= 3 {
		t.Errorf("%d blob requests: the interrupted downloads were not tried again", n)
	}
}

// TestFaultRegistryAnswers429And503 has the registry answer 429 (with
// Retry-After) or 503 for a few seconds: the pull succeeds after the window,
// without hammering. The bounds count attempts, not time: every request
// answered with the fault belongs to a try that prepull says it retried, or
// to the last (at most perTry faulted requests each), its waits follow the backoff
// schedule, and on blobs, which the engine retries by itself, each blob is
// asked for at most engineTries times per pull attempt. Engine 20.10 does
// not pass Retry-After on, so prepull's own backoff spaces its tries.
func TestFaultRegistryAnswers429And503(t *testing.T) {
	f := e2e.NewFixture(t, "proj/fault-status")
	digest := f.Docker.PushImage(t, f.Reg, "proj/fault-status-big", e2e.FaultImage)
	// perTry is the most requests one try of a login (GET /v2/, then again
	// with the login) or of a registry inspect (HEAD, then GET of the
	// manifest) makes.
	const perTry = 2
	// engineTries bounds how often the engine asks for one blob in one
	// pull: Docker Engine's own download attempts (5) and the read of the
	// image config before them.
	const engineTries = 6
	tests := []struct {
		name    string
		failure testenv.Failure
		// retried tells whether prepull says it will retry. The 429 fails
		// the login, which prepull retries before its one pull; a 503 for
		// manifests fails the platform check's registry inspect, retried
		// likewise before the one pull; on a 503 for blobs the engine
		// retries by itself, longer than the window.
		retried bool
	}{
		{"429 with Retry-After on every request", testenv.Failure{Status: 429, RetryAfter: 2 * time.Second, For: 4 * time.Second}, true},
		{"503 on manifests", testenv.Failure{Status: 503, For: 4 * time.Second, Kind: testenv.KindManifest}, true},
		{"503 on blobs", testenv.Failure{Status: 503, For: 3 * time.Second, Kind: testenv.KindBlob}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := testenv.StartFaultProxy(t, f.Reg.Addr)
			pak, ref := f.PakVia(p.Addr, "proj/fault-status-big", digest)
			// Removed however the case ends: left behind, its layers would
			// spare the next case's pull the blobs it must fail on.
			t.Cleanup(func() { f.Docker.RemoveImage(t, ref) })
			cfg := f.WriteConfig(f.LoginFor(p.Addr))
			testenv.Prepull(t) // built before the window opens, not inside it
			start := time.Now()
			p.Fail(tt.failure)
			r := f.Prepull(nil, "--config", cfg, "--json", pak)
			took := time.Since(start)
			logRequests(t, p)
			t.Logf("prepull took %v\nstderr:\n%s", took, r.Stderr)
			r.Want(t, 0)
			res := e2e.OneResult(t, r)
			if res.Status != "pulled" || !f.Docker.HasImage(t, ref) {
				t.Fatalf("result %+v; want pulled and the image in the engine", res)
			}
			if took < tt.failure.For-time.Second {
				t.Errorf("pulled after %v, before the %v fault window ended", took, tt.failure.For)
			}
			if res.Attempts != 1 {
				t.Errorf("%d pull attempts, want 1", res.Attempts)
			}
			delays := retryDelays(t, r.Stderr)
			if retried := len(delays) > 0; retried != tt.retried {
				t.Fatalf("prepull said it will retry %d times, want retries: %v", len(delays), tt.retried)
			}
			for i, d := range delays {
				// The schedule's least delay: half of Base doubled per retry.
				if least := min(retry.Default.Base<<i, retry.Default.Max) / 2; d < least {
					t.Errorf("retry %d after %v, want at least %v (backoff)", i+1, d, least)
				}
			}
			faulted := faultedByPath(p)
			n := 0
			for path, c := range faulted {
				n += c
				if tt.failure.Kind == testenv.KindBlob && c > engineTries*res.Attempts {
					t.Errorf("%s answered %d %d times in %d pull attempts, want at most %d each", path, tt.failure.Status, c, res.Attempts, engineTries)
				}
			}
			if n == 0 {
				t.Errorf("no request was answered %d", tt.failure.Status)
			}
			// The tries are the retried ones and the last, which the
			// window's end may split.
			if tries := len(delays) + 1; tt.retried && n > perTry*tries {
				t.Errorf("%d requests answered %d in %d tries, want at most %d a try", n, tt.failure.Status, tries, perTry)
			}
		})
	}
}

// retryDelays returns the delays of prepull's "failed, will retry" lines
// in stderr, in order.
func retryDelays(t *testing.T, stderr string) []time.Duration {
	t.Helper()
	var delays []time.Duration
	for _, m := range retryDelay.FindAllStringSubmatch(stderr, -1) {
		d, err := time.ParseDuration(m[1])
		if err != nil {
			t.Fatalf("retry line with delay %q: %v", m[1], err)
		}
		delays = append(delays, d)
	}
	return delays
}

var retryDelay = regexp.MustCompile(`failed, will retry\t.*"retry_in": "([^"]+)"`)

// faultedByPath counts the requests the proxy answered with a fault, by path.
func faultedByPath(p *testenv.FaultProxy) map[string]int {
	n := map[string]int{}
	for _, r := range p.Requests() {
		if r.Fault != "" {
			n[r.Path]++
		}
	}
	return n
}

// TestFaultStalledBlobIsRetried stalls one layer download mid-body without
// closing the connection: the stall watchdog (stall_timeout 3s) cancels the
// pull, says so, and the next attempt downloads the layer anew.
func TestFaultStalledBlobIsRetried(t *testing.T) {
	f := e2e.NewFixture(t, "proj/fault-stall")
	digest := f.Docker.PushImage(t, f.Reg, "proj/fault-stall-big", e2e.FaultImage)
	p := testenv.StartFaultProxy(t, f.Reg.Addr)
	p.StallBlobs(testenv.Stall{After: 256 << 10, Count: 1})
	pak, ref := f.PakVia(p.Addr, "proj/fault-stall-big", digest)
	cfg := f.WriteConfig(f.LoginFor(p.Addr) + "stall_timeout: 3s\n")

	start := time.Now()
	r := f.Prepull(nil, "--config", cfg, "--json", "--timeout", "60s", pak)
	took := time.Since(start)
	logRequests(t, p)
	t.Logf("prepull took %v\nstderr:\n%s", took, r.Stderr)
	r.Want(t, 0)
	res := e2e.OneResult(t, r)
	if res.Status != "pulled" || res.Attempts != 2 || !f.Docker.HasImage(t, ref) {
		t.Fatalf("result %+v; want pulled in 2 attempts and the image in the engine", res)
	}
	if !strings.Contains(r.Stderr, "pull stalled: no progress for 3s") {
		t.Error("stderr does not say the pull stalled")
	}
	if s := p.Stalls(); s.Started != 1 {
		t.Errorf("stalls %+v, want 1 started", s)
	}
}

// TestFaultStalledBeforeHeadersEndsAtTimeout stalls one layer download
// before the registry's answer. Engine 20.10 cannot cancel that request:
// every new pull of the image joins the stuck download. The watchdog fires
// on each attempt, and the run ends at --timeout with an error that says
// the pull stalled. Once the registry's connection moves again, a new run
// pulls the image. (A stall of the image's config instead is cancelled
// with the pull, and the next attempt succeeds, as for a layer that stalls
// mid-body.)
func TestFaultStalledBeforeHeadersEndsAtTimeout(t *testing.T) {
	f := e2e.NewFixture(t, "proj/fault-hang")
	digest := f.Docker.PushImage(t, f.Reg, "proj/fault-hang-big", e2e.FaultImage)
	p := testenv.StartFaultProxy(t, f.Reg.Addr)
	p.StallBlobs(testenv.Stall{After: testenv.BeforeHeaders, Count: 1, MinSize: 64 << 10}) // a layer, not the config
	pak, ref := f.PakVia(p.Addr, "proj/fault-hang-big", digest)
	cfg := f.WriteConfig(f.LoginFor(p.Addr) + "stall_timeout: 3s\n")

	start := time.Now()
	r := f.Prepull(nil, "--config", cfg, "--json", "--timeout", "10s", pak)
	took := time.Since(start)
	logRequests(t, p)
	t.Logf("prepull took %v\nstderr:\n%s", took, r.Stderr)
	r.Want(t, 1)
	res := e2e.OneResult(t, r)
	if res.Status != "failed" || res.Attempts < 2 || !strings.Contains(res.Error, "pull stalled: no progress for 3s") {
		t.Errorf("result %+v; want failed after 2 or more attempts, saying the pull stalled", res)
	}
	if n := strings.Count(r.Stderr, "pull stalled"); n < 2 {
		t.Errorf("stderr says %d times that the pull stalled, want every attempt", n)
	}
	// It ends at the timeout, not before: a run cannot end early on a clock
	// that only runs late on a loaded machine.
	if took < 10*time.Second {
		t.Errorf("took %v, want the 10s timeout at least", took)
	}
	if s := p.Stalls(); s.Started != 1 || s.Waiting != 1 || s.ClosedByClient != 0 {
		t.Errorf("stalls %+v: want the one stalled request still open, as Engine 20.10 never gives it up", s)
	}
	// The later attempts joined the stuck download instead of asking again.
	var stalled string
	asked := map[string]int{}
	for _, r := range p.Requests() {
		asked[r.Path]++
		if r.Fault == "stall" {
			stalled = r.Path
		}
	}
	if asked[stalled] != 1 {
		t.Errorf("the stalled blob was asked for %d times, want once: the engine joins its stuck download", asked[stalled])
	}
	if n := p.Count(testenv.KindBlob); n > 4+3*res.Attempts {
		t.Errorf("%d blob requests in %d attempts: more than the image's 4 blobs once, then a few per attempt", n, res.Attempts)
	}

	p.Release()
	again := f.Prepull(nil, "--config", cfg, "--json", "--timeout", "30s", pak)
	t.Logf("after the release:\n%s", again.Stderr)
	again.Want(t, 0)
	if res := e2e.OneResult(t, again); res.Status != "pulled" || !f.Docker.HasImage(t, ref) {
		t.Fatalf("after the release: %+v; want pulled and the image in the engine", res)
	}
}

// TestFaultEngineRestartedUnderAgent restarts the Docker Engine while the
// agent pulls (slowed down by the proxy): the agent survives, says the
// engine went away and came back, finishes that pull and the next pak's.
func TestFaultEngineRestartedUnderAgent(t *testing.T) {
	f := e2e.NewFixture(t, "proj/fault-restart-small")
	digest := f.Docker.PushImage(t, f.Reg, "proj/fault-restart", e2e.FaultImage)
	p := testenv.StartFaultProxy(t, f.Reg.Addr)
	p.Throttle(512 << 10)
	bigPak, bigRef := f.PakVia(p.Addr, "proj/fault-restart", digest)
	// The agent pings the engine every rescan_interval.
	config, inbox, state := f.AgentConfig(f.LoginFor(p.Addr, f.Reg.Addr) + "rescan_interval: 300ms\n")
	a := f.StartAgent(config, inbox, state)

	a.Drop(bigPak, "big.pak")
	a.Eventually("the layers download", func() bool { return p.Count(testenv.KindBlob) >= 4 })
	a.Eventually("half a MiB of the 3 is sent", func() bool { return p.BlobBytes() >= 512<<10 })
	start := time.Now()
	f.Docker.Restart(t)
	t.Logf("engine restarted in %v", time.Since(start))
	a.Eventually("big.pak is in done/ after the restart", func() bool { return a.InDone("big.pak") })
	t.Logf("big.pak done %v after the restart began", time.Since(start))

	a.Drop(f.Pak, "small.pak")
	a.Eventually("small.pak is in done/", func() bool { return a.InDone("small.pak") })
	logRequests(t, p)
	t.Logf("agent log:\n%s", a.LogText())
	for _, ref := range []string{bigRef, f.Ref} {
		if !f.Docker.HasImage(t, ref) {
			t.Errorf("%s is not in the engine", ref)
		}
	}
	if a.CountLogs("docker engine unreachable, will keep trying", nil) == 0 {
		t.Error("the agent's log does not say the engine was unreachable")
	}
	if a.CountLogs("docker engine reachable again", nil) == 0 {
		t.Error("the agent's log does not say the engine came back")
	}
	code, took := a.Terminate()
	if code != 0 {
		t.Errorf("SIGTERM: exit code %d after %v, want 0", code, took)
	}
}

// TestFaultDiskFull pulls an image of 24 MiB into an engine whose data root
// is a tmpfs of 16 MiB: a clear error that says the disk is full, within
// seconds, and no retry (the registry sees the manifest fetched once by the
// platform check and once by the one pull).
func TestFaultDiskFull(t *testing.T) {
	f := e2e.NewFixture(t, "proj/fault-disk")
	digest := f.Docker.PushImage(t, f.Reg, "proj/fault-disk-big", testenv.ImageOptions{Size: 24 << 20, Layers: 2})
	small := testenv.StartDocker(t, testenv.DockerOptions{DiskSize: 16 << 20})
	p := testenv.StartFaultProxy(t, f.Reg.Addr)
	pak, ref := f.PakVia(p.Addr, "proj/fault-disk-big", digest)
	cfg := f.WriteConfig(f.LoginFor(p.Addr))

	start := time.Now()
	r := f.Prepull(nil, "--config", cfg, "--docker-host", small.Host, "--json", pak)
	took := time.Since(start)
	logRequests(t, p)
	t.Logf("prepull took %v\nstderr:\n%s", took, r.Stderr)
	r.Want(t, 1)
	res := e2e.OneResult(t, r)
	if res.Status != "failed" || res.Attempts != 1 || !strings.Contains(res.Error, "no space left") {
		t.Errorf("result %+v; want failed after 1 attempt, saying there is no space left", res)
	}
	if strings.Contains(r.Stderr, "will retry") {
		t.Error("prepull retried a full disk")
	}
	// Once by the platform check before the pull, once by the pull.
	if n := p.Count(testenv.KindManifest); n != 2 {
		t.Errorf("the manifest was fetched %d times, want twice", n)
	}
	if small.HasImage(t, ref) {
		t.Errorf("%s is in the engine with the full disk", ref)
	}
}

//go:build linux

package testenv_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prepull/prepull/internal/testenv"
	"github.com/prepull/prepull/internal/testenv/await"
)

// blobSize is the size of the blob the fake upstream serves.
const blobSize = 64 << 10

// startUpstream serves a registry-shaped fake: a blob of blobSize bytes under
// /v2/*/blobs/ (of 16 bytes when the path ends in "small"), a small manifest
// under /v2/*/manifests/, and 200 elsewhere.
func startUpstream(t *testing.T) (addr string, blob []byte) {
	t.Helper()
	blob = bytes.Repeat([]byte("0123456789abcdef"), blobSize/16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.Contains(r.URL.Path, "/blobs/") && strings.HasSuffix(r.URL.Path, "small"):
			_, _ = w.Write(blob[:16])
		case strings.Contains(r.URL.Path, "/blobs/"):
			w.Header().Set("Content-Length", "65536")
			_, _ = w.Write(blob)
		case strings.Contains(r.URL.Path, "/manifests/"):
			_, _ = io.WriteString(w, `{"schemaVersion":2}`)
		default:
			_, _ = io.WriteString(w, "{}")
		}
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://"), blob
}

// get does GET path through the proxy and returns the status, the
// Retry-After header and the body read so far, with the error that ended it.
func get(ctx context.Context, p *testenv.FaultProxy, path string) (int, string, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", "http://"+p.Addr+path, nil)
	if err != nil {
		return 0, "", nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Retry-After"), body, err
}

const (
	blobPath      = "/v2/proj/x/blobs/sha256:aa"
	smallBlobPath = "/v2/proj/x/blobs/sha256:small"
	manifestPath  = "/v2/proj/x/manifests/sha256:bb"
)

func TestFaultProxyPassesAndCounts(t *testing.T) {
	up, blob := startUpstream(t)
	p := testenv.StartFaultProxy(t, up)
	for _, path := range []string{"/v2/", manifestPath, blobPath, blobPath, "/service/token"} {
		status, _, body, err := get(context.Background(), p, path)
		if err != nil || status != 200 {
			t.Fatalf("GET %s: %d, %v", path, status, err)
		}
		if path == blobPath && !bytes.Equal(body, blob) {
			t.Fatalf("GET %s: %d bytes, not the blob", path, len(body))
		}
	}
	for kind, want := range map[testenv.Kind]int{testenv.KindOther: 1, testenv.KindManifest: 1, testenv.KindBlob: 2, testenv.KindToken: 1} {
		if got := p.Count(kind); got != want {
			t.Errorf("Count(%s) = %d, want %d", kind, got, want)
		}
	}
	if s := p.Summary(); s != "5 requests: 1 manifest, 2 blob, 1 token, 1 other" {
		t.Errorf("Summary() = %q", s)
	}
}

func TestFaultProxyFailures(t *testing.T) {
	tests := []struct {
		name    string
		failure testenv.Failure
		wait    time.Duration // before the last request
		paths   []string
		want    []int // status of each path
	}{
		{"429 for the next two", testenv.Failure{Status: 429, RetryAfter: 2 * time.Second, Count: 2},
			0, []string{"/v2/", manifestPath, manifestPath}, []int{429, 429, 200}},
		{"503 for a while", testenv.Failure{Status: 503, For: 300 * time.Millisecond},
			400 * time.Millisecond, []string{"/v2/", blobPath, manifestPath}, []int{503, 503, 200}},
		{"manifests only until healed", testenv.Failure{Status: 503, Kind: testenv.KindManifest},
			0, []string{"/v2/", manifestPath, blobPath, manifestPath}, []int{200, 503, 200, 503}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up, _ := startUpstream(t)
			p := testenv.StartFaultProxy(t, up)
			// A clock the test moves: For is over when the test says so,
			// not when a loaded machine gets round to the next request.
			var clock atomic.Int64
			p.SetClock(func() time.Time { return time.Unix(0, clock.Load()) })
			p.Fail(tt.failure)
			for i, path := range tt.paths {
				if i == len(tt.paths)-1 {
					clock.Add(int64(tt.wait))
				}
				status, retryAfter, body, err := get(context.Background(), p, path)
				if err != nil {
					t.Fatal(err)
				}
				if status != tt.want[i] {
					t.Errorf("request %d, GET %s: status %d, want %d", i, path, status, tt.want[i])
				}
				if status == 429 {
					if retryAfter != "2" || !strings.Contains(string(body), "TOOMANYREQUESTS") {
						t.Errorf("429: Retry-After %q, body %q; want 2 and TOOMANYREQUESTS", retryAfter, body)
					}
				}
			}
			if got := len(p.Requests()); got != len(tt.paths) {
				t.Errorf("%d requests recorded, want %d", got, len(tt.paths))
			}
		})
	}
}

func TestFaultProxyStallUntilClientCloses(t *testing.T) {
	up, _ := startUpstream(t)
	p := testenv.StartFaultProxy(t, up)
	p.StallBlobs(testenv.Stall{After: 1000, Count: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	status, _, body, err := get(ctx, p, blobPath)
	if status != 200 || len(body) != 1000 || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("stalled GET: status %d, %d bytes, %v; want 200, 1000 bytes, then the client's deadline", status, len(body), err)
	}
	if since := time.Since(start); since < 400*time.Millisecond {
		t.Fatalf("stalled GET ended after %v", since)
	}
	waitFor(t, func() bool { return p.Stalls().ClosedByClient == 1 })
	if s := p.Stalls(); s.Started != 1 || s.Waiting != 0 || s.Released != 0 {
		t.Errorf("Stalls() = %+v, want one started and closed by the client", s)
	}
	// The stall was for one response only.
	if _, _, body, err := get(context.Background(), p, blobPath); err != nil || len(body) != blobSize {
		t.Errorf("next GET: %d bytes, %v; want the whole blob", len(body), err)
	}
}

func TestFaultProxyStallBeforeHeaders(t *testing.T) {
	up, blob := startUpstream(t)
	p := testenv.StartFaultProxy(t, up)
	p.StallBlobs(testenv.Stall{After: testenv.BeforeHeaders})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if status, _, _, err := get(ctx, p, blobPath); status != 0 || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("GET stalled before the headers: status %d, %v; want no answer until the client's deadline", status, err)
	}
	waitFor(t, func() bool { return p.Stalls().ClosedByClient == 1 })
	if status, _, _, err := get(context.Background(), p, manifestPath); status != 200 || err != nil {
		t.Errorf("manifest GET during a blob stall: %d, %v; want 200", status, err)
	}
	done := make(chan []byte)
	go func() {
		_, _, body, _ := get(context.Background(), p, blobPath)
		done <- body
	}()
	waitFor(t, func() bool { return p.Stalls().Waiting == 1 })
	p.Release()
	if body := <-done; !bytes.Equal(body, blob) {
		t.Errorf("released GET: %d bytes, want the whole blob", len(body))
	}
}

func TestFaultProxyStallOnlyBigBlobs(t *testing.T) {
	up, blob := startUpstream(t)
	p := testenv.StartFaultProxy(t, up)
	p.StallBlobs(testenv.Stall{After: testenv.BeforeHeaders, Count: 1, MinSize: 1000})
	if _, _, body, err := get(context.Background(), p, smallBlobPath); err != nil || len(body) != 16 {
		t.Fatalf("small blob: %d bytes, %v; want it whole, not stalled", len(body), err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if _, _, _, err := get(ctx, p, blobPath); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("big blob: %v, want it stalled until the client's deadline", err)
	}
	if _, _, body, err := get(context.Background(), p, blobPath); err != nil || !bytes.Equal(body, blob) {
		t.Errorf("next big blob: %d bytes, %v; want it whole (Count was 1)", len(body), err)
	}
	waitFor(t, func() bool { return p.Stalls() == testenv.StallCounts{Started: 1, ClosedByClient: 1} })
}

func TestFaultProxyStallUntilReleased(t *testing.T) {
	up, blob := startUpstream(t)
	p := testenv.StartFaultProxy(t, up)
	p.StallBlobs(testenv.Stall{})
	done := make(chan []byte, 2)
	for range 2 {
		go func() {
			_, _, body, _ := get(context.Background(), p, blobPath)
			done <- body
		}()
	}
	waitFor(t, func() bool { return p.Stalls().Waiting == 2 })
	p.Release()
	for range 2 {
		if body := <-done; !bytes.Equal(body, blob) {
			t.Errorf("released GET: %d bytes, want the whole blob", len(body))
		}
	}
	if s := p.Stalls(); s.Started != 2 || s.Released != 2 {
		t.Errorf("Stalls() = %+v, want two started and released", s)
	}
}

func TestFaultProxyDrop(t *testing.T) {
	up, blob := startUpstream(t)
	p := testenv.StartFaultProxy(t, up)
	p.DropBlobs(4096, 1)
	_, _, body, err := get(context.Background(), p, blobPath)
	if len(body) != 4096 || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("dropped GET: %d bytes, %v; want 4096 bytes, then unexpected EOF", len(body), err)
	}
	if _, _, body, err := get(context.Background(), p, blobPath); err != nil || !bytes.Equal(body, blob) {
		t.Errorf("next GET: %d bytes, %v; want the whole blob", len(body), err)
	}
	if rs := p.Requests(); len(rs) != 2 || rs[0].Fault != "drop" || rs[1].Fault != "" {
		t.Errorf("Requests() = %+v, want a drop then a clean GET", rs)
	}
}

func TestFaultProxyThrottle(t *testing.T) {
	up, blob := startUpstream(t)
	p := testenv.StartFaultProxy(t, up)
	p.Throttle(blobSize * 4) // the blob in a quarter of a second
	start := time.Now()
	_, _, body, err := get(context.Background(), p, blobPath)
	if err != nil || !bytes.Equal(body, blob) {
		t.Fatalf("throttled GET: %d bytes, %v", len(body), err)
	}
	// Only the lower bound is the throttle's doing; a busy machine may
	// take longer.
	if since := time.Since(start); since < 200*time.Millisecond {
		t.Errorf("throttled GET took %v, want at least about 250ms", since)
	}
}

// waitFor waits for the proxy's stall counts to reach what cond checks,
// up to the test's own deadline (await.Limit).
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	if !await.Until(t, 10*time.Millisecond, cond) {
		t.Fatal("the stall counts never reached what the test waits for")
	}
}

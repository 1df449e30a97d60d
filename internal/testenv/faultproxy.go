//go:build linux

package testenv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"maps"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Kind is what a registry request asks for, as a FaultProxy counts it.
type Kind string

// The kinds of registry requests.
const (
	KindManifest Kind = "manifest" // /v2/NAME/manifests/REFERENCE
	KindBlob     Kind = "blob"     // /v2/NAME/blobs/DIGEST, uploads included
	KindToken    Kind = "token"    // a token endpoint: a path ending in /token
	KindOther    Kind = "other"    // anything else, such as the /v2/ check of a login
)

// kindOf classifies a request by its path.
func kindOf(r *http.Request) Kind {
	p := r.URL.Path
	switch {
	case strings.HasPrefix(p, "/v2/") && strings.Contains(p, "/manifests/"):
		return KindManifest
	case strings.HasPrefix(p, "/v2/") && strings.Contains(p, "/blobs/"):
		return KindBlob
	case strings.HasSuffix(p, "/token"):
		return KindToken
	}
	return KindOther
}

// Failure is an HTTP error that a FaultProxy answers instead of passing a
// request on to the registry.
type Failure struct {
	// Status is the HTTP status, such as 429 or 503. A 429 carries the
	// registry's TOOMANYREQUESTS error as its body; other statuses carry
	// their status text, as a load balancer would.
	Status int
	// RetryAfter, when positive, is sent as Retry-After in whole seconds.
	RetryAfter time.Duration
	// Count, when positive, fails only the next Count matching requests.
	Count int
	// For, when positive, fails matching requests for this long. With
	// neither Count nor For, they fail until Heal.
	For time.Duration
	// Kind, when set, fails only requests of this kind.
	Kind Kind
	// Method, when set, fails only requests of this method: PUT to refuse
	// a push's manifests but let it check which it has.
	Method string
}

// Request is one request a FaultProxy saw.
type Request struct {
	At     time.Duration // since the proxy started
	Method string
	Path   string
	Kind   Kind
	Status int    // the status answered; 502 when the registry did not answer
	Fault  string // the fault applied: "429", "503", "stall", "drop" or ""
}

// StallCounts say what became of the blob responses a FaultProxy stalled.
type StallCounts struct {
	Started        int // responses that stopped sending
	Waiting        int // responses stalled right now
	ClosedByClient int // stalls that ended because the client closed the connection
	Released       int // stalls that ended with Release or Heal
}

// FaultProxy is a reverse proxy on 127.0.0.1 in front of a real registry,
// with faults that a test switches on and off while it runs: HTTP errors
// (Fail), blob downloads that stop sending without closing (StallBlobs) or
// that are cut (DropBlobs), and slow blob downloads (Throttle). It counts
// requests by kind so that tests can tell a retry storm from backoff.
// Images must be named with the proxy's Addr as their registry host.
type FaultProxy struct {
	// Addr is "127.0.0.1:PORT", the registry host to put in references.
	Addr string

	start time.Time
	srv   *http.Server

	mu       sync.Mutex
	failure  *Failure
	failLeft int       // requests left to fail when failure.Count > 0
	failEnd  time.Time // end of the failure when failure.For > 0
	stall    *Stall    // nil when off
	stallN   int       // downloads left to stall when stall.Count > 0
	release  chan struct{}
	drop     int64 // bytes of a blob to send before cutting the connection; -1 when off
	dropN    int   // blob responses left to cut; 0 means all
	rate     int   // blob bytes per second; 0 when not throttled
	requests []Request
	stalls   StallCounts
	sent     int64 // bytes of blob bodies sent to clients

	now func() time.Time // the clock a Failure's For is measured on (SetClock)
}

// StartFaultProxy starts a FaultProxy in front of the registry at upstream
// ("127.0.0.1:PORT"), with no fault on. It is stopped when t ends.
func StartFaultProxy(t testing.TB, upstream string) *FaultProxy {
	t.Helper()
	target, err := url.Parse("http://" + upstream)
	if err != nil {
		t.Fatalf("testenv: fault proxy upstream %q: %v", upstream, err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testenv: fault proxy: %v", err)
	}
	p := &FaultProxy{Addr: ln.Addr().String(), start: time.Now(), now: time.Now, drop: -1, release: make(chan struct{})}
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.Out.Host = r.In.Host // so that the registry's Location headers name the proxy
		},
		Transport:      upstreamTransport(),
		FlushInterval:  -1, // pass each chunk on at once, so that a stall stalls where it says
		ModifyResponse: p.modifyResponse,
		ErrorLog:       log.New(io.Discard, "", 0),
	}
	p.srv = &http.Server{Handler: p.handler(rp), ErrorLog: log.New(io.Discard, "", 0)}
	go func() { _ = p.srv.Serve(ln) }()
	t.Cleanup(func() {
		p.Heal()
		_ = p.srv.Close()
	})
	return p
}

// upstreamRcvBuf is the receive buffer of the proxy's connections to the
// registry. Small, so that a throttled download holds the registry back
// instead of letting it write the whole blob into loopback's buffers at
// once: then stopping the registry cuts the download, as on a real network.
const upstreamRcvBuf = 64 << 10

// upstreamTransport is the transport to the registry, with small receive
// buffers.
func upstreamTransport() *http.Transport {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	dialer := &net.Dialer{
		Timeout: 5 * time.Second,
		Control: func(_, _ string, c syscall.RawConn) error {
			var serr error
			err := c.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, upstreamRcvBuf)
			})
			return errors.Join(err, serr)
		},
	}
	tr.DialContext = dialer.DialContext
	return tr
}

// Fail makes the proxy answer f.Status to the requests f selects, in place
// of any earlier Failure.
func (p *FaultProxy) Fail(f Failure) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.failure, p.failLeft, p.failEnd = &f, f.Count, time.Time{}
	if f.For > 0 {
		p.failEnd = p.now().Add(f.For)
	}
}

// SetClock makes now the clock a Failure's For is measured on, in place of
// time.Now: the proxy's own tests move it instead of sleeping.
func (p *FaultProxy) SetClock(now func() time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.now = now
}

// BeforeHeaders, as a Stall's After, stalls blob downloads before their
// response headers, as a registry that took the request and never answers.
const BeforeHeaders int64 = -1

// Stall says which blob downloads stop sending, and where. A stalled
// download sends nothing more, without closing the connection, until
// Release or Heal, or until the client closes it.
type Stall struct {
	// After is how many bytes of the blob are sent, after the headers,
	// before the stall; BeforeHeaders sends not even the headers.
	After int64
	// Count, when positive, stalls only the next Count downloads that
	// reach After; otherwise every one until Release.
	Count int
	// MinSize, when positive, stalls only blobs of at least this many
	// bytes: an image's layers, say, not its small config.
	MinSize int64
}

// StallBlobs makes blob downloads stall as s says, in place of any earlier
// Stall.
func (p *FaultProxy) StallBlobs(s Stall) {
	p.mu.Lock()
	defer p.mu.Unlock()
	s.After = max(s.After, BeforeHeaders)
	p.stall, p.stallN = &s, s.Count
}

// Release ends the stall fault and lets every stalled response go on.
func (p *FaultProxy) Release() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stall = nil
	close(p.release)
	p.release = make(chan struct{})
}

// DropBlobs makes the next n blob downloads that reach byte after (every one
// when n is 0) send the first after bytes, then close the connection.
func (p *FaultProxy) DropBlobs(after int64, n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.drop, p.dropN = after, n
}

// Throttle limits each blob download to bytesPerSecond; 0 lifts the limit.
func (p *FaultProxy) Throttle(bytesPerSecond int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rate = bytesPerSecond
}

// Heal switches every fault off and releases stalled responses.
func (p *FaultProxy) Heal() {
	p.mu.Lock()
	p.failure, p.drop, p.rate = nil, -1, 0
	p.mu.Unlock()
	p.Release()
}

// Count returns how many requests of kind the proxy saw, faulted or not.
func (p *FaultProxy) Count(kind Kind) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, r := range p.requests {
		if r.Kind == kind {
			n++
		}
	}
	return n
}

// BlobBytes returns how many bytes of blob bodies the proxy has sent to
// clients: the event a test waits for to act in the middle of a download.
func (p *FaultProxy) BlobBytes() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.sent
}

// Requests returns every request the proxy saw, in order.
func (p *FaultProxy) Requests() []Request {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Request(nil), p.requests...)
}

// Stalls says what became of the stalled responses.
func (p *FaultProxy) Stalls() StallCounts {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stalls
}

// Summary is one line counting the requests by kind and by fault, for logs.
func (p *FaultProxy) Summary() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	kinds := map[Kind]int{}
	faults := map[string]int{}
	for _, r := range p.requests {
		kinds[r.Kind]++
		if r.Fault != "" {
			faults[r.Fault]++
		}
	}
	s := fmt.Sprintf("%d requests: %d manifest, %d blob, %d token, %d other",
		len(p.requests), kinds[KindManifest], kinds[KindBlob], kinds[KindToken], kinds[KindOther])
	for _, f := range slices.Sorted(maps.Keys(faults)) {
		s += fmt.Sprintf("; %d %s", faults[f], f)
	}
	return s
}

// ctxKey carries a request's index in p.requests to modifyResponse.
type ctxKey struct{}

// handler records each request and answers it with the current Failure, or
// passes it on to rp.
func (p *FaultProxy) handler(rp *httputil.ReverseProxy) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		kind := kindOf(r)
		p.mu.Lock()
		i := len(p.requests)
		p.requests = append(p.requests, Request{At: time.Since(p.start), Method: r.Method, Path: r.URL.Path, Kind: kind})
		f := p.takeFailure(kind, r.Method)
		if f != nil {
			p.requests[i].Status, p.requests[i].Fault = f.Status, strconv.Itoa(f.Status)
		}
		p.mu.Unlock()

		if f != nil {
			writeFailure(w, *f)
			return
		}
		rec := &statusRecorder{ResponseWriter: w}
		rp.ServeHTTP(rec, r.WithContext(context.WithValue(r.Context(), ctxKey{}, i)))
		p.mu.Lock()
		p.requests[i].Status = rec.status
		p.mu.Unlock()
	})
}

// takeFailure returns the Failure that applies to a request of kind and
// method, counting it. Call with p.mu held.
func (p *FaultProxy) takeFailure(kind Kind, method string) *Failure {
	f := p.failure
	switch {
	case f == nil, f.Kind != "" && f.Kind != kind, f.Method != "" && f.Method != method:
		return nil
	case f.For > 0 && p.now().After(p.failEnd):
		p.failure = nil
		return nil
	case f.Count > 0:
		p.failLeft--
		if p.failLeft <= 0 {
			p.failure = nil
		}
	}
	return f
}

// writeFailure answers f.
func writeFailure(w http.ResponseWriter, f Failure) {
	if f.RetryAfter > 0 {
		secs := int((f.RetryAfter + time.Second - 1) / time.Second)
		w.Header().Set("Retry-After", strconv.Itoa(secs))
	}
	if f.Status == http.StatusTooManyRequests {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(f.Status)
		_, _ = io.WriteString(w, `{"errors":[{"code":"TOOMANYREQUESTS","message":"too many requests: slow down (fault proxy)","detail":null}]}`+"\n")
		return
	}
	http.Error(w, http.StatusText(f.Status)+" (fault proxy)", f.Status)
}

// modifyResponse arms a successful blob download with the stall, drop and
// throttle faults that are on.
func (p *FaultProxy) modifyResponse(resp *http.Response) error {
	if kindOf(resp.Request) != KindBlob || resp.Request.Method != http.MethodGet || resp.StatusCode/100 != 2 {
		return nil
	}
	ctx := resp.Request.Context()
	i, _ := ctx.Value(ctxKey{}).(int)
	p.mu.Lock()
	b := &faultyBody{ReadCloser: resp.Body, ctx: ctx, p: p, i: i, stallAt: -1, dropAt: p.drop}
	var release <-chan struct{}
	stallHeaders := false
	if s := p.stall; s != nil && (s.MinSize <= 0 || resp.ContentLength >= s.MinSize) {
		if s.After >= 0 {
			b.stallAt = s.After
		} else {
			release, stallHeaders = p.takeStall(i)
		}
	}
	p.mu.Unlock()
	resp.Body = b
	if stallHeaders {
		// The reverse proxy sends the headers once this returns.
		return p.waitStall(ctx, release)
	}
	return nil
}

// takeStall reports whether the stall fault is still on for request i, which
// reached its stall offset, and counts it. Call with p.mu held.
func (p *FaultProxy) takeStall(i int) (release <-chan struct{}, ok bool) {
	if p.stall == nil {
		return nil, false
	}
	if p.stall.Count > 0 {
		if p.stallN--; p.stallN <= 0 {
			p.stall = nil
		}
	}
	p.requests[i].Fault = "stall"
	p.stalls.Started++
	p.stalls.Waiting++
	return p.release, true
}

// takeDrop is takeStall for the drop fault. Call with p.mu held.
func (p *FaultProxy) takeDrop(i int) bool {
	if p.drop < 0 {
		return false
	}
	if p.dropN > 0 {
		if p.dropN--; p.dropN == 0 {
			p.drop = -1
		}
	}
	p.requests[i].Fault = "drop"
	return true
}

// errDropped cuts a blob download; the reverse proxy then aborts the
// connection.
var errDropped = errors.New("fault proxy: connection dropped")

// faultyBody is a blob response body with the faults that were on when it
// started. A fault applies when the body reaches its offset and the fault
// is still on then, so that "the next n" counts only the downloads that
// really stalled or were cut, not small blobs that ended before.
type faultyBody struct {
	io.ReadCloser
	ctx     context.Context // ends when the client closes the connection
	p       *FaultProxy
	i       int // index of the request in p.requests
	sent    int64
	stallAt int64 // -1 when not stalling
	dropAt  int64 // -1 when not dropping
}

func (b *faultyBody) Read(buf []byte) (int, error) {
	if b.dropAt >= 0 && b.sent >= b.dropAt {
		b.dropAt = -1
		b.p.mu.Lock()
		drop := b.p.takeDrop(b.i)
		b.p.mu.Unlock()
		if drop {
			return 0, errDropped
		}
	}
	if b.stallAt >= 0 && b.sent >= b.stallAt {
		b.stallAt = -1
		if err := b.stall(); err != nil {
			return 0, err
		}
	}
	limit := int64(len(buf))
	for _, at := range []int64{b.stallAt, b.dropAt} {
		if at >= 0 {
			limit = min(limit, at-b.sent)
		}
	}
	b.p.mu.Lock()
	rate := b.p.rate
	b.p.mu.Unlock()
	if rate > 0 {
		limit = min(limit, int64(max(rate/20, 1))) // about 50 ms worth
	}
	n, err := b.ReadCloser.Read(buf[:limit])
	b.sent += int64(n)
	b.p.mu.Lock()
	b.p.sent += int64(n)
	b.p.mu.Unlock()
	if rate > 0 && n > 0 {
		select {
		case <-time.After(time.Duration(n) * time.Second / time.Duration(rate)):
		case <-b.ctx.Done():
			return n, b.ctx.Err()
		}
	}
	return n, err
}

// stall waits, when the stall fault is still on, until it is released or the
// client closes the connection.
func (b *faultyBody) stall() error {
	b.p.mu.Lock()
	release, ok := b.p.takeStall(b.i)
	b.p.mu.Unlock()
	if !ok {
		return nil
	}
	return b.p.waitStall(b.ctx, release)
}

// waitStall waits for release, or for ctx, which ends when the client closes
// the connection, and counts which came first.
func (p *FaultProxy) waitStall(ctx context.Context, release <-chan struct{}) error {
	var err error
	select {
	case <-release:
	case <-ctx.Done():
		err = ctx.Err()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stalls.Waiting--
	if err != nil {
		p.stalls.ClosedByClient++
	} else {
		p.stalls.Released++
	}
	return err
}

// statusRecorder remembers the status a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// Flush passes a flush on; the reverse proxy flushes after each chunk.
func (r *statusRecorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the real ResponseWriter.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

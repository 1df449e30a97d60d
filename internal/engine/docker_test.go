package engine

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// These tests run Pull's stream handling against a fake engine: an HTTP
// server that answers the two API routes Pull uses. The real Docker Engine is
// exercised by docker_engine_test.go and by the end-to-end suite.

const testDigestRef = "127.0.0.1:5000/proj/x@sha256:e4d3595ec64cbc708f2ab9ebb95807ef09109c0790f4cc3ae367d379b816459e"

// fakeEngine answers /_ping as Engine 20.10 does and /images/create with
// lines, writing each one flushed; when stall is set it then waits for the
// client to go away, and when abort is set it cuts the connection.
type fakeEngine struct {
	lines  []string
	status int  // of /images/create; 200 when zero
	stall  bool // wait for the client to go away after the lines
	abort  bool // cut the connection after the lines

	mu   sync.Mutex
	auth string // the last X-Registry-Auth header
	path string // the last /images/create request's path and query
}

func (f *fakeEngine) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Api-Version", "1.41")
	switch {
	case r.URL.Path == "/_ping":
		fmt.Fprint(w, "OK")
	case strings.HasSuffix(r.URL.Path, "/images/create"):
		f.mu.Lock()
		f.auth = r.Header.Get("X-Registry-Auth")
		f.path = r.URL.String()
		f.mu.Unlock()
		if f.status != 0 {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(f.status)
			fmt.Fprintf(w, `{"message":%q}`, f.lines[0])
			return
		}
		w.Header().Set("Content-Type", "application/json")
		for _, l := range f.lines {
			fmt.Fprintln(w, l)
			w.(http.Flusher).Flush()
		}
		if f.stall {
			<-r.Context().Done()
		}
		if f.abort {
			panic(http.ErrAbortHandler)
		}
	default:
		http.NotFound(w, r)
	}
}

func startFake(t *testing.T, f *fakeEngine) *Docker {
	t.Helper()
	t.Setenv("DOCKER_CERT_PATH", "")
	t.Setenv("DOCKER_TLS_VERIFY", "")
	t.Setenv("DOCKER_API_VERSION", "")
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	e, err := NewDocker("tcp://" + srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

// A pull's stream as Engine 20.10.24 wrote it, lightly trimmed.
var pullLines = []string{
	`{"status":"Pulling from proj/x","id":"127.0.0.1:5000/proj/x@sha256:e4d3595ec64cbc708f2ab9ebb95807ef09109c0790f4cc3ae367d379b816459e"}`,
	`{"status":"Pulling fs layer","progressDetail":{},"id":"ff3d5558984b"}`,
	`{"status":"Downloading","progressDetail":{"current":36445,"total":3001301},"progress":"[\u003e      ]  36.45kB/3.001MB","id":"ff3d5558984b"}`,
	`{"status":"Verifying Checksum","progressDetail":{},"id":"ff3d5558984b"}`,
	`{"status":"Download complete","progressDetail":{},"id":"ff3d5558984b"}`,
	`{"status":"Extracting","progressDetail":{"current":3001301,"total":3001301},"progress":"[=====\u003e]  3.001MB/3.001MB","id":"ff3d5558984b"}`,
	`{"status":"Pull complete","progressDetail":{},"id":"ff3d5558984b"}`,
	`{"status":"Digest: sha256:e4d3595ec64cbc708f2ab9ebb95807ef09109c0790f4cc3ae367d379b816459e"}`,
	`{"status":"Status: Downloaded newer image for 127.0.0.1:5000/proj/x@sha256:e4d3595ec64cbc708f2ab9ebb95807ef09109c0790f4cc3ae367d379b816459e"}`,
}

var pullProgress = []Progress{
	{Status: "Pulling from proj/x"},
	{Layer: "ff3d5558984b", Status: "Pulling fs layer"},
	{Layer: "ff3d5558984b", Status: "Downloading", Current: 36445, Total: 3001301},
	{Layer: "ff3d5558984b", Status: "Verifying Checksum"},
	{Layer: "ff3d5558984b", Status: "Download complete"},
	{Layer: "ff3d5558984b", Status: "Extracting", Current: 3001301, Total: 3001301},
	{Layer: "ff3d5558984b", Status: "Pull complete"},
	{Status: "Digest: sha256:e4d3595ec64cbc708f2ab9ebb95807ef09109c0790f4cc3ae367d379b816459e"},
	{Status: "Status: Downloaded newer image for " + testDigestRef},
}

func TestFakePing(t *testing.T) {
	e := startFake(t, &fakeEngine{})
	v, err := e.Ping(context.Background())
	if err != nil || v != "1.41" {
		t.Errorf("Ping = %q, %v; want 1.41", v, err)
	}
}

func TestFakePullStream(t *testing.T) {
	password := "pa55-w0rd"
	good := &Auth{ServerAddress: "127.0.0.1:5000", Username: "alice", Password: password}
	tests := []struct {
		name      string
		engine    *fakeEngine
		auth      *Auth
		want      error // a sentinel, or nil
		wantErr   bool
		transient bool
		events    []Progress
	}{
		{name: "whole stream", engine: &fakeEngine{lines: pullLines}, auth: good, events: pullProgress},
		{name: "anonymous", engine: &fakeEngine{lines: pullLines}, events: pullProgress},
		{
			name: "error in the stream after a login",
			engine: &fakeEngine{lines: []string{pullLines[0], pullLines[1],
				`{"errorDetail":{"message":"error pulling image configuration: download failed after attempts=1: unauthorized: authentication required"},"error":"error pulling image configuration: download failed after attempts=1: unauthorized: authentication required"}`}},
			auth: good, want: ErrUnauthorized, wantErr: true, events: pullProgress[:2],
		},
		{
			name: "transient error in the stream",
			engine: &fakeEngine{lines: []string{pullLines[0],
				`{"errorDetail":{"message":"error pulling image configuration: download failed after attempts=6: unexpected EOF"},"error":"error pulling image configuration: download failed after attempts=6: unexpected EOF"}`}},
			auth: good, wantErr: true, transient: true, events: pullProgress[:1],
		},
		{
			name:   "old-style error field only",
			engine: &fakeEngine{lines: []string{`{"error":"manifest unknown"}`}},
			auth:   good, want: ErrNotFound, wantErr: true,
		},
		{
			name:   "stream cut short",
			engine: &fakeEngine{lines: []string{pullLines[0], `{"status":"Pulling fs layer",`}, abort: true},
			auth:   good, want: ErrUnreachable, wantErr: true, transient: true, events: pullProgress[:1],
		},
		{
			name:   "404 before the stream",
			engine: &fakeEngine{status: 404, lines: []string{"manifest for " + testDigestRef + " not found: manifest unknown: manifest unknown"}},
			auth:   good, want: ErrNotFound, wantErr: true,
		},
		{
			// Engine 20.10 answers 404 to "pull access denied"; after a good
			// login it means not found, anonymously it means log in.
			name:   "pull access denied, logged in",
			engine: &fakeEngine{status: 404, lines: []string{"pull access denied for 127.0.0.1:5000/proj/x, repository does not exist or may require 'docker login': denied: requested access to the resource is denied"}},
			auth:   good, want: ErrNotFound, wantErr: true,
		},
		{
			name:   "pull access denied, anonymous",
			engine: &fakeEngine{status: 404, lines: []string{"pull access denied for 127.0.0.1:5000/proj/x, repository does not exist or may require 'docker login': denied: requested access to the resource is denied"}},
			want:   ErrUnauthorized, wantErr: true,
		},
		{
			name:   "500 with a registry 503",
			engine: &fakeEngine{status: 500, lines: []string{"received unexpected HTTP status: 503 Service Unavailable"}},
			auth:   good, wantErr: true, transient: true,
		},
		{
			name:   "503 from the engine",
			engine: &fakeEngine{status: 503, lines: []string{"the engine is busy"}},
			auth:   good, wantErr: true, transient: true,
		},
		{
			name:   "401 from the engine",
			engine: &fakeEngine{status: 401, lines: []string{"the registry said no"}},
			auth:   good, want: ErrUnauthorized, wantErr: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := tt.engine
			e := startFake(t, f)
			var events []Progress
			err := e.Pull(context.Background(), testDigestRef, tt.auth, func(p Progress) { events = append(events, p) })
			if (err != nil) != tt.wantErr {
				t.Fatalf("Pull error = %v, want error %v", err, tt.wantErr)
			}
			if kind := kindOf(t, err); kind != tt.want {
				t.Errorf("Pull error %q is %v, want %v", err, kind, tt.want)
			}
			if err != nil {
				if got := Transient(err); got != tt.transient {
					t.Errorf("Transient(%q) = %v, want %v", err, got, tt.transient)
				}
				if strings.Contains(err.Error(), password) {
					t.Errorf("the error shows the password: %q", err)
				}
				if !strings.HasPrefix(err.Error(), "pull "+testDigestRef+": ") {
					t.Errorf("the error does not name the pull: %q", err)
				}
			}
			if fmt.Sprint(events) != fmt.Sprint(tt.events) {
				t.Errorf("events:\n%v\nwant:\n%v", events, tt.events)
			}

			f.mu.Lock()
			defer f.mu.Unlock()
			if !strings.Contains(f.path, "fromImage=127.0.0.1%3A5000%2Fproj%2Fx") || !strings.Contains(f.path, "tag=sha256%3Ae4d3595e") {
				t.Errorf("the engine was asked %q", f.path)
			}
			if tt.auth == nil {
				if f.auth != "" {
					t.Errorf("an anonymous pull sent X-Registry-Auth %q", f.auth)
				}
				return
			}
			raw, err := base64.URLEncoding.DecodeString(f.auth)
			if err != nil {
				t.Fatalf("X-Registry-Auth: %v", err)
			}
			var sent struct {
				Username, Password, ServerAddress string
			}
			if err := json.Unmarshal(raw, &sent); err != nil {
				t.Fatalf("X-Registry-Auth: %v", err)
			}
			if sent.Username != "alice" || sent.Password != password || sent.ServerAddress != "127.0.0.1:5000" {
				t.Errorf("X-Registry-Auth carried %+v", sent)
			}
		})
	}
}

// endCtx is a context that the test ends by hand with err, the error of a
// deadline or of a cancel: placed by an event, not by a timer.
type endCtx struct {
	context.Context
	done chan struct{}
	err  error
}

func (c *endCtx) Done() <-chan struct{} { return c.done }

func (c *endCtx) Err() error {
	select {
	case <-c.done:
		return c.err
	default:
		return nil
	}
}

func TestFakePullCancel(t *testing.T) {
	tests := []struct {
		name      string
		want      error
		transient bool
	}{
		{"deadline", context.DeadlineExceeded, true},
		{"cancel", context.Canceled, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := startFake(t, &fakeEngine{lines: pullLines[:3], stall: true})
			// It ends once the three events before the stall arrived.
			ctx := &endCtx{Context: context.Background(), done: make(chan struct{}), err: tt.want}
			var n int
			err := e.Pull(ctx, testDigestRef, nil, func(Progress) {
				if n++; n == 3 {
					close(ctx.done)
				}
			})
			if !errors.Is(err, tt.want) {
				t.Errorf("Pull of a stalled stream = %v, want %v", err, tt.want)
			}
			if Transient(err) != tt.transient {
				t.Errorf("Transient(%v) = %v, want %v", err, !tt.transient, tt.transient)
			}
			if n != 3 {
				t.Errorf("got %d events before the stall, want 3", n)
			}
		})
	}
}

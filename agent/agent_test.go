package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prepull/prepull/internal/config"
	"github.com/prepull/prepull/internal/engine"
	"github.com/prepull/prepull/internal/pak/paktest"
	"github.com/prepull/prepull/internal/testenv/await"
)

func TestPakPulledAndMovedToDone(t *testing.T) {
	h := newHarness(t, "")
	h.start()
	ref := h.drop("a.pak", "proj/a", "a")
	h.eventually("a.pak is in done/", func() bool { return exists(filepath.Join(h.inbox(), DoneDir, "a.pak")) })

	if exists(filepath.Join(h.inbox(), "a.pak")) {
		t.Error("a.pak is still in the inbox")
	}
	if n := h.eng.pullCount(ref); n != 1 {
		t.Errorf("%d pulls of %s, want 1", n, ref)
	}
	s := h.state()
	if len(s.Paks) != 1 || len(s.Images) != 1 {
		t.Fatalf("state has %d paks and %d images, want 1 and 1: %+v", len(s.Paks), len(s.Images), s)
	}
	p, im := s.Paks[0], s.Images[0]
	if p.Status != StatusPresent || p.Reference != ref || p.File != filepath.Join(h.inbox(), DoneDir, "a.pak") || !strings.HasPrefix(p.SHA256, "sha256:") {
		t.Errorf("pak state %+v", p)
	}
	if im.Status != StatusPresent || im.Pulls != 1 || im.Attempts != 1 || im.LastPulled.IsZero() || im.Digest != paktest.DigestOf("a") {
		t.Errorf("image state %+v", im)
	}
	h.eng.mu.Lock()
	logins := h.eng.logins
	h.eng.mu.Unlock()
	if len(logins) != 1 || logins[0].Username != "robot" || logins[0].Password != "secret-1" {
		t.Errorf("logins %+v, want one as robot with the password file's secret", logins)
	}
	if strings.Contains(h.logText(), "secret-1") {
		t.Error("the password appears in the log")
	}
}

func TestManyPaksFewImagesPullEachOnce(t *testing.T) {
	// The pulls wait, without progress, until every pak is taken, which
	// takes seconds on a busy machine: no stall timeout may cut them (a
	// stalled pull is retried, a second pull that is no duplicate).
	h := newHarness(t, "concurrency: 2\nstall_timeout: 1h\npull_timeout: 1h\n")
	h.eng.pullWait = make(chan struct{})
	h.start()
	refs := map[string]bool{}
	for i := range 30 {
		repo := fmt.Sprintf("proj/img%d", i%3)
		p := paktest.Pak{Registry: registry, Repository: "/" + repo, Digest: paktest.DigestOf(repo), Version: fmt.Sprintf("1.0.%d", i)}
		h.writeFile(fmt.Sprintf("pak%02d.pak", i), p.Bytes())
		refs[p.Reference("")] = true
	}
	h.eventually("30 paks are taken", func() bool { return len(h.state().Paks) == 30 })
	close(h.eng.pullWait)
	h.eventually("every pak is in done/", func() bool {
		entries, _ := os.ReadDir(filepath.Join(h.inbox(), DoneDir))
		return len(entries) == 30
	})
	if n := h.eng.totalPulls(); n != 3 {
		t.Errorf("%d pulls, want 3", n)
	}
	for ref := range refs {
		if n := h.eng.pullCount(ref); n != 1 {
			t.Errorf("%d pulls of %s, want 1", n, ref)
		}
	}
	if h.eng.maxActive > 2 {
		t.Errorf("%d pulls ran at once, concurrency is 2", h.eng.maxActive)
	}
}

func TestInvalidPakGoesToFailedWithReason(t *testing.T) {
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"garbage.pak", []byte("this is not a pak"), "garbage.pak"},
		{"noregistry.pak", paktest.Pak{Digest: paktest.DigestOf("x")}.Bytes(), "REGISTRY"},
		{"classic.pak", paktest.Pak{Classic: true}.Bytes(), "not a containerized"},
	}
	h := newHarness(t, "")
	h.start()
	for _, tt := range tests {
		h.writeFile(tt.name, tt.data)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			failed := filepath.Join(h.inbox(), FailedDir, tt.name)
			h.eventually(tt.name+" is in failed/", func() bool { return exists(failed+errorSuffix) && exists(failed) })
			reason, err := os.ReadFile(failed + errorSuffix)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(reason), tt.want) {
				t.Errorf("%s says %q, want it to mention %q", tt.name+errorSuffix, reason, tt.want)
			}
			if st := h.pakStatus(tt.name); st != StatusInvalid {
				t.Errorf("status %q, want %q", st, StatusInvalid)
			}
		})
	}
	if n := h.eng.totalPulls(); n != 0 {
		t.Errorf("%d pulls for invalid paks", n)
	}
}

func TestIgnoresDotFilesOtherNamesAndSymlinks(t *testing.T) {
	h := newHarness(t, "")
	outside := t.TempDir()
	target := paktest.Pak{Registry: registry, Repository: "/proj/outside", Digest: paktest.DigestOf("o")}.WriteFile(t, outside)
	h.start()
	data := paktest.Pak{Registry: registry, Repository: "/proj/ignored", Digest: paktest.DigestOf("i")}.Bytes()
	for _, name := range []string{".hidden.pak", "notes.txt", "copy.pak.part", "x.pak~"} {
		if err := os.WriteFile(filepath.Join(h.inbox(), name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(target, filepath.Join(h.inbox(), "link.pak")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(h.inbox(), "dir.pak"), 0o700); err != nil {
		t.Fatal(err)
	}
	h.drop("real.pak", "proj/real", "r")
	h.eventually("real.pak is in done/", func() bool { return exists(filepath.Join(h.inbox(), DoneDir, "real.pak")) })
	h.rescans(3)
	if n := h.eng.totalPulls(); n != 1 {
		t.Errorf("%d pulls, want 1 (for real.pak only)", n)
	}
	for _, name := range []string{".hidden.pak", "notes.txt", "copy.pak.part", "x.pak~", "link.pak", "dir.pak"} {
		if !exists(filepath.Join(h.inbox(), name)) {
			t.Errorf("%s was moved", name)
		}
	}
	if len(h.state().Paks) != 1 {
		t.Errorf("state has %d paks, want 1", len(h.state().Paks))
	}
}

func TestSameBytesUnderTwoNamesAreTwoPaks(t *testing.T) {
	h := newHarness(t, "")
	h.start()
	data := paktest.Pak{Registry: registry, Repository: "/proj/same", Digest: paktest.DigestOf("s")}.Bytes()
	h.writeFile("first.pak", data)
	h.eventually("first.pak is done", func() bool { return exists(filepath.Join(h.inbox(), DoneDir, "first.pak")) })
	h.writeFile("second.pak", data)
	h.eventually("second.pak is done", func() bool { return exists(filepath.Join(h.inbox(), DoneDir, "second.pak")) })
	// The same name again goes beside the first, never over it.
	h.writeFile("first.pak", data)
	h.eventually("first.pak again is done", func() bool { return exists(filepath.Join(h.inbox(), DoneDir, "first.2.pak")) })
	s := h.state()
	if len(s.Paks) != 3 || len(s.Images) != 1 {
		t.Errorf("state has %d paks and %d images, want 3 and 1: %+v", len(s.Paks), len(s.Images), s.Paks)
	}
	// Deleting one file lets go of that pak only; the image stays kept.
	if err := os.Remove(filepath.Join(h.inbox(), DoneDir, "second.pak")); err != nil {
		t.Fatal(err)
	}
	h.eventually("second.pak is forgotten", func() bool { return len(h.state().Paks) == 2 })
	if s := h.state(); len(s.Images) != 1 {
		t.Errorf("the image was let go while first.pak still names it: %+v", s)
	}
	if strings.Contains(h.logText(), "no longer keeping") {
		t.Errorf("an image was let go:\n%s", h.logText())
	}
	if n := h.eng.totalPulls(); n != 1 {
		t.Errorf("%d pulls, want 1", n)
	}
}

func TestTransientFailuresAreRetried(t *testing.T) {
	h := newHarness(t, "")
	h.eng.pullErr = func(_ string, attempt int) error {
		if attempt <= 2 {
			return errors.New("received unexpected HTTP status: 503 Service Unavailable")
		}
		return nil
	}
	h.start()
	ref := h.drop("t.pak", "proj/t", "t")
	h.eventually("t.pak is done", func() bool { return exists(filepath.Join(h.inbox(), DoneDir, "t.pak")) })
	if n := h.eng.pullCount(ref); n != 3 {
		t.Errorf("%d pulls, want 3", n)
	}
	if im := h.state().Images[0]; im.Attempts != 3 || im.LastError != "" {
		t.Errorf("image state %+v, want 3 attempts and no last error", im)
	}
}

func TestStalledPullIsCancelledAndRetried(t *testing.T) {
	h := newHarness(t, "stall_timeout: 100ms\n")
	h.eng.stallOn = func(attempt int) bool { return attempt == 1 }
	h.start()
	ref := h.drop("s.pak", "proj/s", "s")
	h.eventually("s.pak is done", func() bool { return exists(filepath.Join(h.inbox(), DoneDir, "s.pak")) })
	if n := h.eng.pullCount(ref); n != 2 {
		t.Errorf("%d pulls, want 2", n)
	}
	if !strings.Contains(h.logText(), "stalled") {
		t.Errorf("no log line tells of the stall:\n%s", h.logText())
	}
}

func TestRejectedCredentialsRetriedAfterReload(t *testing.T) {
	h := newHarness(t, "")
	h.eng.loginErr = func(a engine.Auth) error {
		if a.Password != "secret-2" {
			return fmt.Errorf("login: %w: unauthorized: incorrect username or password", engine.ErrUnauthorized)
		}
		return nil
	}
	h.start()
	h.drop("c.pak", "proj/c", "c")
	h.eventually("the image failed", func() bool {
		s := h.state()
		return len(s.Images) == 1 && s.Images[0].Status == StatusFailed
	})
	s := h.state()
	if im := s.Images[0]; !strings.Contains(im.LastError, "rejected") || im.Attempts != 1 {
		t.Errorf("image state %+v, want one attempt and the rejection as last error", im)
	}
	if p := s.Paks[0]; p.Status != StatusFailed || p.LastError == "" {
		t.Errorf("pak state %+v, want failed with the error", p)
	}
	if !exists(filepath.Join(h.inbox(), "c.pak")) {
		t.Error("c.pak left the inbox, but rejected credentials can be fixed")
	}
	if err := os.WriteFile(filepath.Join(h.dir, "password"), []byte("secret-2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	h.agent.Reload()
	h.eventually("c.pak is done after the reload", func() bool { return exists(filepath.Join(h.inbox(), DoneDir, "c.pak")) })
	if strings.Contains(h.logText(), "secret-") {
		t.Error("a password appears in the log")
	}
}

func TestVerifyPullsVanishedImageAgain(t *testing.T) {
	h := newHarness(t, "verify_interval: 50ms\n")
	h.start()
	ref := h.drop("v.pak", "proj/v", "v")
	h.eventually("v.pak is done", func() bool { return exists(filepath.Join(h.inbox(), DoneDir, "v.pak")) })
	h.eng.Remove(context.TODO(), ref)
	h.eventually("the image is pulled again", func() bool { return h.eng.pullCount(ref) == 2 })
	h.eventually("the image is present again", func() bool {
		im := h.state().Images[0]
		return im.Status == StatusPresent && im.Pulls == 2
	})
	if !strings.Contains(h.logText(), "vanished") {
		t.Errorf("no log line tells that the image vanished:\n%s", h.logText())
	}
}

func TestDeletedFromDoneIsNoLongerKept(t *testing.T) {
	h := newHarness(t, "verify_interval: 50ms\n")
	h.start()
	keep := h.drop("keep.pak", "proj/keep", "k")
	gone := h.drop("gone.pak", "proj/gone", "g")
	h.eventually("both paks are done", func() bool {
		return exists(filepath.Join(h.inbox(), DoneDir, "keep.pak")) && exists(filepath.Join(h.inbox(), DoneDir, "gone.pak"))
	})
	if err := os.Remove(filepath.Join(h.inbox(), DoneDir, "gone.pak")); err != nil {
		t.Fatal(err)
	}
	h.eventually("the deleted pak's image is let go", func() bool { return len(h.state().Images) == 1 })
	h.eng.Remove(context.TODO(), gone)
	h.eng.Remove(context.TODO(), keep)
	h.eventually("the kept image is pulled again", func() bool { return h.eng.pullCount(keep) == 2 })
	h.looks(keep, 3) // verify rounds, which would find gone missing too if it were kept
	if n := h.eng.pullCount(gone); n != 1 {
		t.Fatalf("the image of the deleted pak was pulled %d times, want 1", n)
	}
	if st := h.state(); len(st.Paks) != 1 || st.Paks[0].Name != "keep.pak" {
		t.Fatalf("state still lists %+v", st.Paks)
	}
	if got := h.letGoPaks(); !slices.Equal(got, []string{"gone.pak"}) {
		t.Errorf("let-go lines name the paks %q, want one naming gone.pak:\n%s", got, h.logText())
	}
}

// TestDeletedFromDoneWhilePulledIsLetGo deletes a pak from done/, which only
// a rescan notices, while its vanished image is pulled again: the let-go
// line, logged when the cancelled pull ends, names the pak as the line of an
// idle image does.
func TestDeletedFromDoneWhilePulledIsLetGo(t *testing.T) {
	h := newHarness(t, "verify_interval: 50ms\n")
	h.start()
	ref := h.drop("d.pak", "proj/d", "d")
	h.eventually("d.pak is done", func() bool { return exists(filepath.Join(h.inbox(), DoneDir, "d.pak")) })
	h.eng.mu.Lock()
	h.eng.pullWait = make(chan struct{}) // never closed: the pull runs until cancelled
	h.eng.mu.Unlock()
	h.eng.Remove(context.TODO(), ref)
	h.eventually("the image is pulled again", func() bool { return h.eng.pullCount(ref) == 2 })
	if err := os.Remove(filepath.Join(h.inbox(), DoneDir, "d.pak")); err != nil {
		t.Fatal(err)
	}
	h.eventually("the image is let go", func() bool { s := h.state(); return len(s.Images) == 0 && len(s.Paks) == 0 })
	h.eventually("the log says so", func() bool { return len(h.letGoPaks()) > 0 })
	if got := h.letGoPaks(); !slices.Equal(got, []string{"d.pak"}) {
		t.Errorf("let-go lines name the paks %q, want one naming d.pak:\n%s", got, h.logText())
	}
}

// TestDeletedWhilePulledIsLetGo deletes a pak while its image is pulled:
// the pull is cancelled, the image let go, and the log says so once.
func TestDeletedWhilePulledIsLetGo(t *testing.T) {
	h := newHarness(t, "")
	h.eng.pullWait = make(chan struct{}) // never closed: the pull runs until cancelled
	h.start()
	ref := h.drop("p.pak", "proj/p", "p")
	h.eventually("the pull runs", func() bool { return h.eng.pullCount(ref) == 1 })
	if err := os.Remove(filepath.Join(h.inbox(), "p.pak")); err != nil {
		t.Fatal(err)
	}
	h.eventually("the image is let go", func() bool { s := h.state(); return len(s.Images) == 0 && len(s.Paks) == 0 })
	h.eventually("the log says so", func() bool { return len(h.letGoPaks()) > 0 })
	if got := h.letGoPaks(); !slices.Equal(got, []string{"p.pak"}) {
		t.Errorf("let-go lines name the paks %q, want one naming p.pak:\n%s", got, h.logText())
	}
	if n := h.eng.pullCount(ref); n != 1 {
		t.Errorf("%d pulls, want 1", n)
	}
}

func TestEngineDownThenBack(t *testing.T) {
	h := newHarness(t, "")
	h.eng.setDown(true)
	h.start()
	h.drop("d.pak", "proj/d", "d")
	h.eventually("the agent says docker is unreachable", func() bool { return strings.Contains(h.agent.statusLine(), "docker unreachable") })
	h.rescans(2)
	if exists(filepath.Join(h.inbox(), DoneDir, "d.pak")) {
		t.Fatal("d.pak is done while the engine is down")
	}
	h.eng.setDown(false)
	h.eventually("d.pak is done", func() bool { return exists(filepath.Join(h.inbox(), DoneDir, "d.pak")) })
	h.eventually("the status line clears", func() bool { return !strings.Contains(h.agent.statusLine(), "unreachable") })
}

func TestStopMidPullThenRestartResumes(t *testing.T) {
	h := newHarness(t, "")
	h.eng.pullWait = make(chan struct{})
	h.start()
	ref := h.drop("k.pak", "proj/k", "k")
	h.eventually("the pull runs", func() bool { return h.eng.pullCount(ref) == 1 })
	h.stop() // returns at all only if the pull was cancelled: pullWait never closes
	s := h.state()
	if len(s.Images) != 1 || s.Images[0].Status != StatusWaiting {
		t.Fatalf("after stop the image is %+v, want waiting", s.Images)
	}
	if !exists(filepath.Join(h.inbox(), "k.pak")) {
		t.Fatal("k.pak left the inbox before its image was present")
	}

	h.eng.pullWait = nil
	h.start()
	h.eventually("k.pak is done after the restart", func() bool { return exists(filepath.Join(h.inbox(), DoneDir, "k.pak")) })
	if n := h.eng.pullCount(ref); n != 2 {
		t.Errorf("%d pulls, want 2", n)
	}
}

func TestRestartFinishesMoveAfterCrash(t *testing.T) {
	// The state says the pak is done, but a crash came before the move.
	h := newHarness(t, "")
	ref := h.drop("m.pak", "proj/m", "m")
	inbox, err := os.OpenRoot(h.inbox())
	if err != nil {
		t.Fatal(err)
	}
	defer inbox.Close()
	f, err := readPakIn(inbox, "m.pak", filepath.Join(h.inbox(), "m.pak"), fileID{})
	if err != nil {
		t.Fatal(err)
	}
	stateDir := filepath.Join(h.dir, "state")
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	crashed := &State{Version: 1,
		Paks:   []PakState{{SHA256: f.sha, File: filepath.Join(h.inbox(), DoneDir, "m.pak"), Name: "m.pak", Reference: ref, Status: StatusPresent, FirstSeen: now, Updated: now}},
		Images: []ImageState{{Reference: ref, Digest: paktest.DigestOf("m"), Status: StatusPresent, Pulls: 1, Updated: now}},
	}
	if err := writeState(openRoot(t, stateDir), crashed); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(stateDir, tempPrefix+"123"), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	h.eng.images[ref] = true
	h.start()
	h.eventually("m.pak is moved to done/", func() bool { return exists(filepath.Join(h.inbox(), DoneDir, "m.pak")) })
	if n := h.eng.totalPulls(); n != 0 {
		t.Errorf("%d pulls of a present image", n)
	}
	if exists(filepath.Join(stateDir, tempPrefix+"123")) {
		t.Error("a stale temporary state file was left")
	}
}

func TestRefusesUnsafeWatchDir(t *testing.T) {
	tests := []struct {
		name string
		mode os.FileMode
		ok   bool
	}{
		{"private", 0o700, true},
		{"group readable", 0o750, true},
		{"group writable", 0o770, false},
		{"world writable", 0o777, false},
		{"sticky world writable", 0o777 | os.ModeSticky, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, "")
			if err := os.Chmod(h.inbox(), tt.mode); err != nil {
				t.Fatal(err)
			}
			_, err := New(Options{Config: h.cfg, Engine: h.eng, Log: zapNop()})
			if tt.ok && err != nil {
				t.Fatalf("New: %v", err)
			}
			if !tt.ok && !errors.Is(err, config.ErrInvalid) {
				t.Fatalf("New: %v, want an error wrapping config.ErrInvalid", err)
			}
		})
	}
}

func TestNotifiesSystemd(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	t.Setenv("NOTIFY_SOCKET", sock)
	msgs := make(chan string, 100)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				close(msgs)
				return
			}
			msgs <- string(buf[:n])
		}
	}()
	wait := func(want string) string {
		t.Helper()
		timeout := time.After(await.Limit(t))
		for {
			select {
			case m := <-msgs:
				if strings.Contains(m, want) {
					return m
				}
			case <-timeout:
				t.Fatalf("no notification with %q", want)
			}
		}
	}
	h := newHarness(t, "")
	h.start()
	if m := wait("READY=1"); !strings.Contains(m, "STATUS=watching "+h.inbox()) {
		t.Errorf("READY=1 came without the status line: %q", m)
	}
	h.drop("n.pak", "proj/n", "n")
	wait("1 present")
	// The status line follows the engine too, though no state changes.
	h.eng.setDown(true)
	wait("docker unreachable")
	h.eng.setDown(false)
	for m := wait("STATUS="); strings.Contains(m, "unreachable"); m = wait("STATUS=") {
	}
	h.agent.Reload()
	wait("RELOADING=1")
	wait("READY=1")
	h.stop()
	wait("STOPPING=1")
}

func TestBadConfigOnReloadKeepsRunning(t *testing.T) {
	h := newHarness(t, "")
	h.start()
	if err := os.WriteFile(h.cfgFile, []byte("concurrency: 0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	h.agent.Reload()
	h.eventually("the failed reload is logged", func() bool { return strings.Contains(h.logText(), "reload failed") })
	h.drop("after.pak", "proj/after", "after")
	h.eventually("after.pak is done with the running configuration", func() bool {
		return exists(filepath.Join(h.inbox(), DoneDir, "after.pak"))
	})
}

func TestDegradedWhileStateCannotBeSaved(t *testing.T) {
	h := newHarness(t, "")
	h.start()
	h.drop("a.pak", "proj/a", "a")
	h.eventually("a.pak is in done/", func() bool { return exists(filepath.Join(h.inbox(), DoneDir, "a.pak")) })
	// A folder where state.json goes: every save fails, as on a broken disk.
	stateFile := filepath.Join(h.dir, "state", StateFile)
	if err := os.Remove(stateFile); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(stateFile, "x"), 0o700); err != nil {
		t.Fatal(err)
	}
	refB := h.drop("b.pak", "proj/b", "b")
	h.eventually("the agent says it is degraded", func() bool {
		return strings.HasPrefix(h.agent.statusLine(), "degraded: cannot save state: ")
	})
	h.eventually("b.pak's image is pulled", func() bool { return h.eng.pullCount(refB) == 1 })
	h.rescans(3)
	if exists(filepath.Join(h.inbox(), DoneDir, "b.pak")) {
		t.Fatal("b.pak moved to done/ while the state could not be saved")
	}
	holder, err := ReadHolder(filepath.Join(h.dir, "state"))
	if err != nil || !holder.Held || len(holder.Live.Degraded) != 1 || !strings.HasPrefix(holder.Live.Degraded[0], "cannot save state: ") {
		t.Errorf("the lock file says %+v (%v), want held and degraded", holder, err)
	}
	if err := os.RemoveAll(stateFile); err != nil {
		t.Fatal(err)
	}
	h.eventually("b.pak is in done/ once the state can be saved", func() bool { return exists(filepath.Join(h.inbox(), DoneDir, "b.pak")) })
	if n := strings.Count(h.logText(), "degraded: cannot save state"); n != 1 {
		t.Errorf("degraded logged %d times, want once:\n%s", n, h.logText())
	}
	if line := h.agent.statusLine(); strings.Contains(line, "degraded") {
		t.Errorf("status line %q after saving works again", line)
	}
}

func TestCheckSafeLooksAllTheWayUp(t *testing.T) {
	tests := []struct {
		name   string
		parent os.FileMode
		owner  int
		bad    string // the folder the error must name; "" when safe
	}{
		{"private parent", 0o755, 0, ""},
		{"sticky world-writable parent, as /tmp", 0o777 | os.ModeSticky, 0, ""},
		{"world-writable parent", 0o777, 0, "parent"},
		{"group-writable parent", 0o775, 0, "parent"},
		{"parent owned by another user", 0o755, 4242, "parent"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parent := filepath.Join(t.TempDir(), "parent")
			dir := filepath.Join(parent, "inbox")
			if err := os.MkdirAll(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(parent, tt.parent); err != nil {
				t.Fatal(err)
			}
			if tt.owner != 0 {
				if os.Geteuid() != 0 {
					t.Skip("changing a folder's owner needs root")
				}
				if err := os.Chown(parent, tt.owner, tt.owner); err != nil {
					t.Fatal(err)
				}
			}
			err := checkSafe("watch_dir", dir)
			switch {
			case tt.bad == "" && err != nil:
				t.Errorf("checkSafe: %v, want nil", err)
			case tt.bad != "" && (!errors.Is(err, config.ErrInvalid) || !strings.Contains(err.Error(), "folder "+parent+" ")):
				t.Errorf("checkSafe: %v, want an error naming %s", err, parent)
			}
		})
	}
}

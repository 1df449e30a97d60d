package agent

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"go.uber.org/zap"
)

// notifier tells systemd about the service when it runs as a Type=notify
// unit ($NOTIFY_SOCKET set); otherwise it does nothing.
type notifier struct {
	log *zap.Logger

	mu         sync.Mutex
	lastStatus string
}

func newNotifier(log *zap.Logger) *notifier { return &notifier{log: log} }

// send passes lines to systemd.
func (n *notifier) send(lines ...string) {
	if _, err := daemon.SdNotify(false, strings.Join(lines, "\n")); err != nil {
		n.log.Debug("cannot notify systemd", zap.Error(err))
	}
}

// ready says the service is up (again), with its status.
func (n *notifier) ready(status string) {
	n.mu.Lock()
	n.lastStatus = status
	n.mu.Unlock()
	n.send("READY=1", "STATUS="+status)
}

// status updates the status line when it changed.
func (n *notifier) status(status string) {
	n.mu.Lock()
	changed := status != n.lastStatus
	n.lastStatus = status
	n.mu.Unlock()
	if changed {
		n.send("STATUS=" + status)
	}
}

// reloading says a reload starts. MONOTONIC_USEC lets systemd match it
// with the reload it asked for.
func (n *notifier) reloading() {
	lines := []string{"RELOADING=1", "STATUS=reloading the configuration"}
	if usec, ok := monotonicUsec(); ok {
		lines = append(lines, "MONOTONIC_USEC="+strconv.FormatInt(usec, 10))
	}
	n.send(lines...)
}

// stopping says the service is stopping.
func (n *notifier) stopping() { n.send("STOPPING=1", "STATUS=stopping") }

// watchdog tells systemd the service is alive.
func (n *notifier) watchdog() { n.send("WATCHDOG=1") }

// watchdogEvery returns how often to call watchdog: half of WatchdogSec, or
// zero when the unit sets no watchdog.
func (n *notifier) watchdogEvery() time.Duration {
	d, err := daemon.SdWatchdogEnabled(false)
	if err != nil || d <= 0 {
		return 0
	}
	return d / 2
}

// statusLine sums the agent up for systemctl status, e.g.
// "watching /var/lib/prepull/inbox: 1 pulling, 7 present, docker unreachable",
// led by "degraded: cannot save state: no space left on device; " when the
// agent cannot work normally.
func (a *Agent) statusLine() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	counts := map[string]int{}
	for _, im := range a.images {
		counts[im.Status]++
	}
	invalid := 0
	for _, p := range a.paks {
		if p.Status == StatusInvalid {
			invalid++
		}
	}
	var parts []string
	for _, s := range []string{StatusPulling, StatusWaiting, StatusPresent, StatusFailed} {
		if counts[s] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[s], s))
		}
	}
	if invalid > 0 {
		parts = append(parts, fmt.Sprintf("%d invalid paks", invalid))
	}
	if len(parts) == 0 {
		parts = append(parts, "no images yet")
	}
	if a.engineDown {
		parts = append(parts, "docker unreachable")
	}
	line := "watching " + a.watchDir + ": " + strings.Join(parts, ", ")
	if d := a.degraded(); len(d) > 0 {
		line = "degraded: " + strings.Join(d, "; ") + "; " + line
	}
	return line
}

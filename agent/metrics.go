package agent

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// The pull outcomes of prepull_pulls_total: every Ensure call ends in one.
const (
	OutcomePulled  = "pulled"  // the image was pulled
	OutcomePresent = "present" // the image was there already (a first check or a verify)
	OutcomeFailed  = "failed"  // the call gave up; the image is tried again later
)

// The reasons of prepull_degraded, a closed set: one per cause the agent
// reports as degraded in prepull status.
const (
	DegradedStateNotSaved  = "state_not_saved"  // state.json cannot be written: no pak moves
	DegradedWatchDirUnsafe = "watch_dir_unsafe" // watch_dir is unsafe: no new pak is taken
	DegradedConfDirUnsafe  = "conf_dir_unsafe"  // a folder of conf_dirs is unsafe
)

var (
	pakStatuses      = []string{StatusWaiting, StatusPulling, StatusPresent, StatusFailed, StatusInvalid}
	imageStatuses    = []string{StatusWaiting, StatusPulling, StatusPresent, StatusFailed}
	pullOutcomes     = []string{OutcomePulled, OutcomePresent, OutcomeFailed}
	degradedReasons  = []string{DegradedStateNotSaved, DegradedWatchDirUnsafe, DegradedConfDirUnsafe}
	pullBucketsInSec = []float64{1, 2, 5, 10, 30, 60, 120, 300, 600, 1200, 1800}
)

// metrics is what the agent publishes in metrics_file for the node
// exporter's textfile collector. Label values are closed sets (the
// constants above and the statuses): no reference, digest or file name.
type metrics struct {
	reg          *prometheus.Registry
	paks, images *prometheus.GaugeVec
	pulls        *prometheus.CounterVec
	pullDuration prometheus.Histogram
	saved        prometheus.Gauge
	degraded     *prometheus.GaugeVec
	engineUp     prometheus.Gauge
	removed      prometheus.Counter
	// lastErr is the last write error logged, so that a failing write is
	// logged once per cause, not at every change.
	lastErr string
}

func newMetrics(version string) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		paks: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "prepull_paks",
			Help: "Paks (and conf_dirs confs) the agent knows, by status."}, []string{"status"}),
		images: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "prepull_images",
			Help: "Images the agent keeps present, by status."}, []string{"status"}),
		pulls: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "prepull_pulls_total",
			Help: "Checks and pulls of an image since the agent started, by outcome."}, []string{"outcome"}),
		pullDuration: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "prepull_pull_duration_seconds",
			Help: "How long the pulls that ended with the image pulled took, retries included.", Buckets: pullBucketsInSec}),
		saved: prometheus.NewGauge(prometheus.GaugeOpts{Name: "prepull_state_saved_timestamp_seconds",
			Help: "When the agent last saved its state, in seconds since the epoch."}),
		degraded: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "prepull_degraded",
			Help: "1 while the agent is degraded for the reason, else 0."}, []string{"reason"}),
		engineUp: prometheus.NewGauge(prometheus.GaugeOpts{Name: "prepull_engine_up",
			Help: "1 when Docker Engine answered the agent's last check, else 0."}),
		removed: prometheus.NewCounter(prometheus.CounterOpts{Name: "prepull_images_removed_total",
			Help: "Released images keep_images removed or untagged since the agent started."}),
	}
	info := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "prepull_build_info",
		Help: "Always 1; the version label is the agent's version."}, []string{"version"})
	info.WithLabelValues(version).Set(1)
	m.reg.MustRegister(m.paks, m.images, m.pulls, m.pullDuration, m.saved, m.degraded, m.engineUp, m.removed, info)
	// Every label value is written from the start, 0 included: a series
	// that appears only once it is non-zero breaks rate() and alerts.
	for _, o := range pullOutcomes {
		m.pulls.WithLabelValues(o)
	}
	return m
}

// pullEnded counts one Ensure call's outcome.
func (m *metrics) pullEnded(outcome string, d time.Duration) {
	m.pulls.WithLabelValues(outcome).Inc()
	if outcome == OutcomePulled {
		m.pullDuration.Observe(d.Seconds())
	}
}

// writeMetrics sets the gauges from the agent's state and writes
// metrics_file atomically (a temporary file renamed in the same folder,
// mode 0644 whatever the umask, so that the node exporter's user reads it).
// It does nothing without metrics_file. Call with a.mu held.
func (a *Agent) writeMetrics() {
	path := a.cfg.MetricsFile
	if path == "" {
		return
	}
	m := a.metrics
	count := func(v *prometheus.GaugeVec, statuses []string, each func(func(string))) {
		n := map[string]float64{}
		each(func(s string) { n[s]++ })
		for _, s := range statuses {
			v.WithLabelValues(s).Set(n[s])
		}
	}
	count(m.paks, pakStatuses, func(f func(string)) {
		for _, p := range a.paks {
			f(p.Status)
		}
	})
	count(m.images, imageStatuses, func(f func(string)) {
		for _, im := range a.images {
			f(im.Status)
		}
	})
	if !a.lastSaved.IsZero() {
		m.saved.Set(float64(a.lastSaved.UnixNano()) / 1e9)
	}
	reasons := map[string]bool{DegradedStateNotSaved: a.saveErr != ""}
	for dir := range a.unsafe {
		if dir == a.watchDir {
			reasons[DegradedWatchDirUnsafe] = true
		} else {
			reasons[DegradedConfDirUnsafe] = true
		}
	}
	for _, r := range degradedReasons {
		m.degraded.WithLabelValues(r).Set(b2f(reasons[r]))
	}
	m.engineUp.Set(b2f(!a.engineAt.IsZero() && !a.engineDown))

	err := prometheus.WriteToTextfile(path, m.reg)
	switch {
	case err != nil && err.Error() != m.lastErr:
		a.log.Error("cannot write metrics_file, will try again at the next change", zap.String("path", path), zap.Error(err))
	case err == nil && m.lastErr != "":
		a.log.Info("metrics_file written again", zap.String("path", path))
	}
	m.lastErr = ""
	if err != nil {
		m.lastErr = err.Error()
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

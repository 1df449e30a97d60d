//go:build linux

package bench

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prepull/prepull/internal/pak/paktest"
	"github.com/prepull/prepull/internal/testenv"
)

// idlePaks is how many finished paks the idle agent has in its state.
func idlePaks() int { return smoke(1000, 20) }

// idleWindow is how long the idle agent is watched.
func idleWindow() time.Duration { return smoke(60*time.Second, 2*time.Second) }

// BenchmarkAgentIdle makes a state of 1,000 finished paks naming 5 images
// through the agent itself (the paks dropped into its inbox, pulled,
// moved to done/), stops it, starts a new agent on that state with the
// default intervals, lets it settle for 10 s, and then watches it for 60 s:
// CPU time (schedstat of every thread, and clock ticks) and RSS. The
// Docker Engine over the same 60 s is the peer (targets: RSS under 30 MiB,
// no measurable CPU).
func BenchmarkAgentIdle(b *testing.B) {
	e := newEnv(b)
	var paks []paktest.Pak
	for i := range 5 {
		_, p := e.image(fmt.Sprintf("bench/idle%d", i), fmt.Sprintf("Idle%d", i), testenv.ImageOptions{})
		paks = append(paks, p)
	}

	config, inbox, state := e.agentConfig("idle", "settle: 100ms", "rescan_interval: 1s")
	a := e.startAgent(config, inbox, state)
	start := time.Now()
	for i := range idlePaks() {
		p := paks[i%len(paks)]
		p.Version = fmt.Sprintf("1.0.%d", i)
		a.drop(fmt.Sprintf("idle%04d.pak", i), p.Bytes())
	}
	a.waitLogs(10*time.Minute, "pak done", nil, idlePaks())
	b.Logf("the agent took %d paks naming %d images in %v", idlePaks(), len(paks), time.Since(start).Round(time.Millisecond))
	a.stop()
	checkState(b, state, idlePaks(), len(paks))

	// The same state under the defaults: settle 2s, rescan_interval 30s,
	// verify_interval 10m.
	defaults := filepath.Join(filepath.Dir(config), "defaults.yaml")
	writeFile(b, defaults, e.base+fmt.Sprintf("watch_dir: %s\nstate_dir: %s\nlog_format: json\n", inbox, state))
	restart := time.Now()
	a = e.startAgent(defaults, inbox, state)
	a.waitLogs(10*time.Second, "state restored", nil, 1)
	a.waitVerified(state, restart, len(paks)) // the restored images are verified at once
	pid := a.cmd.Process.Pid
	dockerd := dockerdPid(b, e)

	before, err := readUsage(pid)
	if err != nil {
		b.Fatal(err)
	}
	engBefore, err := readUsage(dockerd)
	if err != nil {
		b.Fatal(err)
	}
	var rss, engRSS []int64
	for range int(idleWindow() / time.Second) {
		// The window is what is measured (CPU and RSS over time), not a
		// wait for an outcome.
		time.Sleep(time.Second)
		u, err := readUsage(pid)
		if err != nil {
			b.Fatal(err)
		}
		rss = append(rss, u.rss)
		if eu, err := readUsage(dockerd); err == nil {
			engRSS = append(engRSS, eu.rss)
		}
	}
	after, err := readUsage(pid)
	if err != nil {
		b.Fatal(err)
	}
	engAfter, err := readUsage(dockerd)
	if err != nil {
		b.Fatal(err)
	}
	if n := len(a.logs("pulling image", nil)); n != 0 {
		b.Errorf("the idle agent pulled %d times", n)
	}
	a.stop()

	cpu := after.cpu - before.cpu
	ticks := after.ticks - before.ticks
	engCPU := engAfter.cpu - engBefore.cpu
	maxRSS, engMaxRSS := slicesMax(rss), slicesMax(engRSS)
	b.ReportMetric(ms(cpu), "agent-idle-cpu-ms/60s")
	b.ReportMetric(float64(ticks), "agent-idle-ticks/60s")
	b.ReportMetric(ms(engCPU), "dockerd-idle-cpu-ms/60s")
	b.ReportMetric(mib(maxRSS), "agent-idle-rss-MiB")
	b.ReportMetric(mib(after.hwm), "agent-hwm-MiB")
	b.ReportMetric(mib(engMaxRSS), "dockerd-rss-MiB")
	record(b, figure{
		Name:    fmt.Sprintf("agent idle, %d finished paks in its state: CPU over 60 s", idlePaks()),
		Prepull: fmt.Sprintf("%.1f ms (%.4f%% of a core, %d clock ticks)", ms(cpu), 100*cpu.Seconds()/idleWindow().Seconds(), ticks),
		Peer:    fmt.Sprintf("%.1f ms (dockerd, same 60 s)", ms(engCPU)),
		Ratio:   fmt.Sprintf("%.3f", cpu.Seconds()/engCPU.Seconds()),
		Target:  "no measurable CPU (< 1 clock tick = 10 ms / 60 s)",
		Met:     ticks == 0 && cpu < 10*time.Millisecond,
	})
	record(b, figure{
		Name:    fmt.Sprintf("agent idle, %d finished paks in its state: RSS (max over 60 s; peak since start %.1f MiB)", idlePaks(), mib(after.hwm)),
		Prepull: fmt.Sprintf("%.1f MiB", mib(maxRSS)),
		Peer:    fmt.Sprintf("%.1f MiB (dockerd)", mib(engMaxRSS)),
		Ratio:   fmt.Sprintf("%.3f", float64(maxRSS)/float64(engMaxRSS)),
		Target:  "< 30 MiB",
		Met:     maxRSS < 30<<20,
	})
}

// dockerdPid returns the pid of the benchmark's Docker Engine.
func dockerdPid(b *testing.B, e *env) int {
	b.Helper()
	data, err := os.ReadFile(filepath.Join(e.docker.Dir, "dockerd.pid"))
	if err != nil {
		b.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		b.Fatal(err)
	}
	return pid
}

func slicesMax(xs []int64) int64 {
	var m int64
	for _, x := range xs {
		m = max(m, x)
	}
	return m
}

// waitVerified waits until state.json in dir shows images images checked
// in the engine since since, as the agent does at once with a restored
// state: bounded by reads of the state, not by a guess at how long the
// checks take.
func (a *agentProc) waitVerified(dir string, since time.Time, images int) {
	a.b.Helper()
	for i := 0; ; i++ {
		var s struct {
			Images []struct {
				LastVerified time.Time `json:"last_verified"`
			} `json:"images"`
		}
		verified := 0
		if data, err := os.ReadFile(filepath.Join(dir, "state.json")); err == nil && json.Unmarshal(data, &s) == nil {
			for _, im := range s.Images {
				if !im.LastVerified.Before(since) {
					verified++
				}
			}
		}
		if verified == images {
			return
		}
		if i == 3000 {
			a.b.Fatalf("%d of %d restored images verified after %d reads of state.json:\n%s", verified, images, i, a.tail())
		}
		select {
		case <-a.done:
			a.b.Fatalf("the agent exited before it verified the restored images:\n%s", a.tail())
		case <-time.After(10 * time.Millisecond): // pacing between reads, not a wait for an outcome
		}
	}
}

// checkState fails b unless state.json in dir holds paks present paks and
// images present images.
func checkState(b *testing.B, dir string, paks, images int) {
	b.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "state.json"))
	if err != nil {
		b.Fatal(err)
	}
	var s struct {
		Paks   []struct{ Status string } `json:"paks"`
		Images []struct{ Status string } `json:"images"`
	}
	if err := json.Unmarshal(data, &s); err != nil {
		b.Fatal(err)
	}
	present := 0
	for _, p := range s.Paks {
		if p.Status == "present" {
			present++
		}
	}
	if len(s.Paks) != paks || present != paks || len(s.Images) != images {
		b.Fatalf("state.json has %d paks (%d present) and %d images, want %d present and %d", len(s.Paks), present, len(s.Images), paks, images)
	}
}

// latencyDrops is how many paks are dropped, one at a time, for each settle
// time in BenchmarkAgentLatency.
func latencyDrops() int { return smoke(7, 1) }

// BenchmarkAgentLatency drops paks one at a time into a running agent, each
// naming an image the engine does not hold, and measures from the pak's
// arrival (its rename into the inbox) to the start of its pull (the agent's
// "pulling image" line, after the presence check and the login), with
// settle 100ms and with the default 2s. The settle time is the agent's
// deliberate wait for a copy to finish; what is left after it is prepull's
// own. The peer is an operator running `prepull PAK` by hand the moment the
// pak lands: arrival to image present, minus settle, against the one-shot's
// wall time for the same image (target: arrival to pull start under 1 s).
func BenchmarkAgentLatency(b *testing.B) {
	e := newEnv(b)
	var refs []string
	var paks []paktest.Pak
	for i := range latencyDrops() {
		ref, p := e.image(fmt.Sprintf("bench/lat%d", i), fmt.Sprintf("Lat%d", i), testenv.ImageOptions{})
		refs, paks = append(refs, ref), append(paks, p)
	}
	for _, settle := range []time.Duration{100 * time.Millisecond, 2 * time.Second} {
		for _, ref := range refs {
			e.docker.RemoveImage(b, ref)
		}
		config, inbox, state := e.agentConfig("lat-"+settle.String(), "settle: "+settle.String())
		a := e.startAgent(config, inbox, state)
		var toPull, toTaken, takenToPull, toPresent, oneShot []time.Duration
		for i, p := range paks {
			name := fmt.Sprintf("lat%d.pak", i)
			arrival := a.drop(name, p.Bytes())
			done := a.waitLogs(time.Minute, "pak done", map[string]string{"pak": name}, 1)[0]
			taken := a.logs("pak taken", map[string]string{"pak": name})
			pulling := a.logs("pulling image", map[string]string{"pak": name})
			if len(taken) != 1 || len(pulling) != 1 {
				b.Fatalf("%s: %d taken and %d pulling lines, want 1 each:\n%s", name, len(taken), len(pulling), a.tail())
			}
			// The agent's time stamps have millisecond precision.
			arrival = arrival.Truncate(time.Millisecond)
			toPull = append(toPull, pulling[0].ts.Sub(arrival))
			toTaken = append(toTaken, taken[0].ts.Sub(arrival))
			takenToPull = append(takenToPull, pulling[0].ts.Sub(taken[0].ts))
			toPresent = append(toPresent, done.ts.Sub(arrival)-settle)

			e.docker.RemoveImage(b, refs[i])
			pakFile := p.WriteFile(b, b.TempDir())
			oneShot = append(oneShot, run(b, e.command("--config", e.config, pakFile)).wall)
		}
		a.stop()

		pull, tk, tp := median(toPull), median(toTaken), median(takenToPull)
		present, shot := median(toPresent), median(oneShot)
		suffix := "-settle-" + settle.String()
		b.ReportMetric(ms(pull), "arrival-to-pull-ms"+suffix)
		b.ReportMetric(ms(tk), "arrival-to-taken-ms"+suffix)
		b.ReportMetric(ms(tp), "taken-to-pull-ms"+suffix)
		b.ReportMetric(ms(present), "arrival-to-present-minus-settle-ms"+suffix)
		b.ReportMetric(ms(shot), "oneshot-ms"+suffix)
		label := "settle " + settle.String()
		if settle == 2*time.Second {
			label += " (the default)"
		}
		record(b, figure{
			Name: fmt.Sprintf("agent, %s: arrival -> pull start, median of %d (arrival -> taken %s, taken -> pull %s)",
				label, latencyDrops(), fmtDur(tk), fmtDur(tp)),
			Prepull: fmtDur(pull),
			Peer:    fmtDur(settle) + " (the settle time itself)",
			Ratio:   fmt.Sprintf("%.3f", pull.Seconds()/settle.Seconds()),
			Target:  "< 1 s",
			Met:     pull < time.Second,
		})
		record(b, figure{
			Name:    fmt.Sprintf("agent, %s: arrival -> image present, minus settle, median of %d", label, latencyDrops()),
			Prepull: fmtDur(present),
			Peer:    fmtDur(shot) + " (prepull PAK by hand, same image)",
			Ratio:   fmt.Sprintf("%.3f", present.Seconds()/shot.Seconds()),
			Target:  "(information)",
			Met:     true,
		})
	}
}

// dedupRounds is how many times BenchmarkAgentDedup times each side.
func dedupRounds() int { return smoke(3, 1) }

// BenchmarkAgentDedup drops 200 paks naming 5 images (24 MiB, 2 layers
// each) at once into a running agent (settle 100ms) and times from the
// first drop until the last pak is in done/, against 5 one-shot `prepull
// PAK` pulls of the same images run one after the other: "5 single pulls"
// read as the same pull path without the agent, so that the ratio is the
// cost of the 195 extra paks and the agent's bookkeeping. The agent runs
// once with concurrency 1, like for like with the sequential one-shots
// (the headline), and once with its default concurrency 2. The images are
// removed before every run; the sides alternate (target: at most 1.2x).
func BenchmarkAgentDedup(b *testing.B) {
	e := newEnv(b)
	var refs, pakFiles []string
	var paks []paktest.Pak
	pakDir := b.TempDir()
	for i := range 5 {
		ref, p := e.image(fmt.Sprintf("bench/dedup%d", i), fmt.Sprintf("Dedup%d", i), testenv.ImageOptions{Size: smoke(24<<20, 1<<20), Layers: 2})
		refs, paks, pakFiles = append(refs, ref), append(paks, p), append(pakFiles, p.WriteFile(b, pakDir))
	}
	removeAll := func() {
		for _, ref := range refs {
			e.docker.RemoveImage(b, ref)
		}
	}
	datas := make([][]byte, smoke(200, 20))
	for i := range datas {
		p := paks[i%len(paks)]
		p.Version = fmt.Sprintf("2.0.%d", i)
		datas[i] = p.Bytes()
	}

	agentRun := func(name string, concurrency int) time.Duration {
		removeAll()
		config, inbox, state := e.agentConfig(name, "settle: 100ms", "concurrency: "+strconv.Itoa(concurrency))
		a := e.startAgent(config, inbox, state)
		start := time.Now()
		for i, data := range datas {
			a.drop(fmt.Sprintf("dedup%03d.pak", i), data)
		}
		lines := a.waitLogs(5*time.Minute, "pak done", nil, len(datas))
		took := lines[len(datas)-1].read.Sub(start)
		pulls := a.logs("pulling image", nil)
		if len(pulls) != len(refs) {
			b.Errorf("%s: %d pulls for %d images", name, len(pulls), len(refs))
		}
		// Where the time went, from the agent's own time stamps.
		start = start.Truncate(time.Millisecond)
		taken, present := a.logs("pak taken", nil), a.logs("image present", nil)
		var handoff time.Duration // from an image present to the next pull starting
		for i := 1; i < len(pulls) && concurrency == 1 && i <= len(present); i++ {
			handoff += pulls[i].ts.Sub(present[i-1].ts)
		}
		b.Logf("%s: first pak taken %v, last taken %v, first pull %v, last image present %v, last pak done %v; between pulls %v in all",
			name, taken[0].ts.Sub(start), taken[len(taken)-1].ts.Sub(start), pulls[0].ts.Sub(start),
			present[len(present)-1].ts.Sub(start), lines[len(lines)-1].ts.Sub(start), handoff)
		a.stop()
		checkState(b, state, len(datas), len(refs))
		return took
	}
	oneShots := func() time.Duration {
		removeAll()
		start := time.Now()
		for _, f := range pakFiles {
			run(b, e.command("--config", e.config, f))
		}
		return time.Since(start)
	}

	var ag1, ag2, peer []time.Duration
	for r := range dedupRounds() {
		if r%2 == 0 {
			peer = append(peer, oneShots())
			ag1 = append(ag1, agentRun(fmt.Sprintf("dedup-c1-%d", r), 1))
			ag2 = append(ag2, agentRun(fmt.Sprintf("dedup-c2-%d", r), 2))
		} else {
			ag2 = append(ag2, agentRun(fmt.Sprintf("dedup-c2-%d", r), 2))
			ag1 = append(ag1, agentRun(fmt.Sprintf("dedup-c1-%d", r), 1))
			peer = append(peer, oneShots())
		}
		b.Logf("round %d: 5 one-shots %v, agent concurrency 1 %v, concurrency 2 %v", r+1,
			peer[r].Round(time.Millisecond), ag1[r].Round(time.Millisecond), ag2[r].Round(time.Millisecond))
	}
	removeAll()

	p, a1, a2 := median(peer), median(ag1), median(ag2)
	b.ReportMetric(ms(p), "5-oneshots-ms")
	b.ReportMetric(ms(a1), "agent-200-paks-c1-ms")
	b.ReportMetric(ms(a2), "agent-200-paks-c2-ms")
	b.ReportMetric(a1.Seconds()/p.Seconds(), "x-vs-oneshots-c1")
	b.ReportMetric(a2.Seconds()/p.Seconds(), "x-vs-oneshots-c2")
	for _, c := range []struct {
		label string
		d     time.Duration
	}{{"concurrency 1", a1}, {"concurrency 2 (the default)", a2}} {
		record(b, figure{
			Name:    fmt.Sprintf("dedup: 200 paks naming 5 images (24 MiB each), agent %s, settle 100ms: median of %d", c.label, dedupRounds()),
			Prepull: fmtDur(c.d),
			Peer:    fmtDur(p) + " (5 one-shot prepull pulls in sequence)",
			Ratio:   fmt.Sprintf("%.3f", c.d.Seconds()/p.Seconds()),
			Target:  "<= 1.2",
			Met:     c.d.Seconds()/p.Seconds() <= 1.2,
		})
	}
}

//go:build linux

package bench

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prepull/prepull/internal/testenv"
)

// pullPairs is how many times each of prepull and docker pulls the image,
// alternated, in BenchmarkPullOverhead.
func pullPairs() int { return smoke(7, 1) }

// BenchmarkPullOverhead pulls a 120 MiB image of 4 layers from a local
// registry with a login, pullPairs times with `prepull PAK` and pullPairs
// times with `docker login` + `docker pull REF` (timed together, with a
// fresh DOCKER_CONFIG each time), alternating which goes first, the image
// removed from the engine before every run. It reports the median of the
// per-pair ratios prepull/docker (target: at most 1.05).
func BenchmarkPullOverhead(b *testing.B) {
	e := newEnv(b)
	ref, p := e.image("bench/big", "BenchBig", testenv.ImageOptions{Size: smoke(120<<20, 1<<20), Layers: 4})
	pak := p.WriteFile(b, e.dir)

	var pre, dock []sample
	var ratios []float64
	for i := range pullPairs() {
		pair := map[string]sample{}
		order := []string{"prepull", "docker"}
		if i%2 == 1 {
			order = []string{"docker", "prepull"}
		}
		for _, who := range order {
			e.docker.RemoveImage(b, ref)
			switch who {
			case "prepull":
				pair[who] = run(b, e.command("--config", e.config, pak))
			case "docker":
				pair[who] = e.dockerLoginPull(b, ref, fmt.Sprintf("docker-%d", i))
			}
			if !e.docker.HasImage(b, ref) {
				b.Fatalf("%s did not leave %s in the engine", who, ref)
			}
		}
		pre = append(pre, pair["prepull"])
		dock = append(dock, pair["docker"])
		ratios = append(ratios, pair["prepull"].wall.Seconds()/pair["docker"].wall.Seconds())
		b.Logf("pair %d (%s first): prepull %v, docker login+pull %v, ratio %.3f", i+1, order[0],
			pair["prepull"].wall.Round(time.Millisecond), pair["docker"].wall.Round(time.Millisecond), ratios[i])
	}
	// One more run each under GNU time, for the peak RSS of the clients.
	e.docker.RemoveImage(b, ref)
	preRSS := peakRSS(b, e.command("--config", e.config, pak))
	e.docker.RemoveImage(b, ref)
	dockRSS := peakRSS(b, e.dockerCLI(filepath.Join(e.dir, "docker-0"), "pull", ref))
	e.docker.RemoveImage(b, ref)

	ratio := median(ratios)
	preWall, dockWall := median(walls(pre)), median(walls(dock))
	b.ReportMetric(ratio, "x-vs-docker")
	b.ReportMetric(ms(preWall), "prepull-ms")
	b.ReportMetric(ms(dockWall), "docker-ms")
	b.ReportMetric(ms(median(cpus(pre))), "prepull-cpu-ms")
	b.ReportMetric(ms(median(cpus(dock))), "docker-cpu-ms")
	record(b, figure{
		Name:    "pull 120 MiB/4 layers: median wall (median of 7 alternated pair ratios)",
		Prepull: fmtDur(preWall), Peer: fmtDur(dockWall) + " (docker login + docker pull)",
		Ratio: fmt.Sprintf("%.3f", ratio), Target: "<= 1.05", Met: ratio <= 1.05,
	})
	record(b, figure{
		Name:    "pull 120 MiB/4 layers: client CPU (user+sys) median",
		Prepull: fmtDur(median(cpus(pre))), Peer: fmtDur(median(cpus(dock))) + " (docker CLI)",
		Ratio:  fmt.Sprintf("%.3f", median(cpus(pre)).Seconds()/median(cpus(dock)).Seconds()),
		Target: "(information)", Met: true,
	})
	b.ReportMetric(mib(preRSS), "prepull-peak-MiB")
	b.ReportMetric(mib(dockRSS), "docker-pull-peak-MiB")
	record(b, figure{
		Name:    "pull 120 MiB/4 layers: client peak RSS",
		Prepull: fmt.Sprintf("%.1f MiB", mib(preRSS)), Peer: fmt.Sprintf("%.1f MiB (docker pull)", mib(dockRSS)),
		Ratio: fmt.Sprintf("%.3f", float64(preRSS)/float64(dockRSS)), Target: "(information)", Met: true,
	})
}

// dockerLoginPull runs docker login (password on standard input) and docker
// pull ref with a new DOCKER_CONFIG folder named name, and measures the two
// together: wall time from the start of the login to the end of the pull,
// and CPU time.
func (e *env) dockerLoginPull(b *testing.B, ref, name string) sample {
	b.Helper()
	config := filepath.Join(e.dir, name)
	login := e.dockerCLI(config, "login", "--username", "alice", "--password-stdin", e.reg.Addr)
	login.Stdin = strings.NewReader(e.password + "\n")
	pull := e.dockerCLI(config, "pull", ref)
	start := time.Now()
	l := run(b, login)
	p := run(b, pull)
	return sample{wall: time.Since(start), cpu: l.cpu + p.cpu}
}

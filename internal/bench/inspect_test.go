//go:build linux

package bench

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/prepull/prepull/internal/pak/paktest"
	"github.com/prepull/prepull/internal/testenv"
)

// inspectRuns is how many times each of prepull and the unzip pipeline reads
// each pak, alternated, in BenchmarkInspect.
func inspectRuns() int { return smoke(21, 1) }

// BenchmarkInspect runs `prepull inspect` on paks whose content/ makes them
// 10 MiB, 100 MiB and 1 GiB, alternated with the shell pipeline that reads
// the same facts by hand,
//
//	unzip -p PAK adapter.zip | funzip | grep -E '^(REGISTRY|REPOSITORY|DIGEST)='
//
// (funzip prints the first member of the zip on its standard input, and the
// SDK writes the .conf first in adapter.zip). It reports the median wall
// times, their ratio, how the time grows from 10 MiB to 1 GiB (flat: 1), and
// the peak RSS of both (targets: flat, under 50 ms and under 30 MiB at
// 1 GiB). The paks are in the page cache, as a pak just copied is.
func BenchmarkInspect(b *testing.B) {
	testenv.Require(b)
	for _, tool := range []string{"unzip", "funzip", "grep"} {
		if _, err := exec.LookPath(tool); err != nil {
			b.Fatalf("the peer pipeline needs %s: apt-get install unzip (%v)", tool, err)
		}
	}
	prepull := testenv.Prepull(b)
	dir := b.TempDir()
	config := filepath.Join(dir, "config.yaml")
	writeFile(b, config, "log_format: console\n")
	prepullCmd := func(pak string) *exec.Cmd {
		cmd := exec.Command(prepull, "inspect", "--config", config, pak)
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir}
		return cmd
	}
	peerCmd := func(pak string) *exec.Cmd {
		cmd := exec.Command("/bin/sh", "-c", `unzip -p "$1" adapter.zip | funzip | grep -E '^(REGISTRY|REPOSITORY|DIGEST)='`, "sh", pak)
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir}
		return cmd
	}

	type result struct {
		name                string
		prepull, peer       time.Duration
		prepullRSS, peerRSS int64
	}
	var results []result
	for _, size := range smoke([]int64{10 << 20, 100 << 20, 1 << 30}, []int64{1 << 20, 2 << 20, 4 << 20}) {
		name := fmt.Sprintf("%d MiB", size>>20)
		if size >= 1<<30 {
			name = fmt.Sprintf("%d GiB", size>>30)
		}
		pakDir := filepath.Join(dir, fmt.Sprintf("pak-%d", size>>20))
		if err := os.Mkdir(pakDir, 0o700); err != nil {
			b.Fatal(err)
		}
		pak := paktest.Pak{Registry: paktest.Registry, ContentBytes: size}.WriteFile(b, pakDir)
		// One untimed run each, so that both start from the same caches.
		run(b, prepullCmd(pak))
		run(b, peerCmd(pak))
		var pre, peer []sample
		for i := range inspectRuns() {
			if i%2 == 0 {
				pre = append(pre, run(b, prepullCmd(pak)))
				peer = append(peer, run(b, peerCmd(pak)))
			} else {
				peer = append(peer, run(b, peerCmd(pak)))
				pre = append(pre, run(b, prepullCmd(pak)))
			}
		}
		r := result{name: name, prepull: median(walls(pre)), peer: median(walls(peer)),
			prepullRSS: peakRSS(b, prepullCmd(pak)), peerRSS: peakRSS(b, peerCmd(pak))}
		results = append(results, r)
		if err := os.Remove(pak); err != nil {
			b.Fatal(err)
		}
		unit := fmt.Sprintf("-%dMiB", size>>20)
		b.ReportMetric(ms(r.prepull), "prepull-ms"+unit)
		b.ReportMetric(ms(r.peer), "unzip-ms"+unit)
		b.ReportMetric(r.prepull.Seconds()/r.peer.Seconds(), "x-vs-unzip"+unit)
		b.ReportMetric(mib(r.prepullRSS), "prepull-peak-MiB"+unit)

		target, met := "flat in size", true
		if size >= 1<<30 {
			target, met = "< 50 ms", r.prepull < 50*time.Millisecond
		}
		record(b, figure{
			Name:    fmt.Sprintf("inspect %s pak: median wall of %d", name, inspectRuns()),
			Prepull: fmtDur(r.prepull), Peer: fmtDur(r.peer) + " (unzip -p | funzip | grep)",
			Ratio: fmt.Sprintf("%.3f", r.prepull.Seconds()/r.peer.Seconds()), Target: target, Met: met,
		})
		record(b, figure{
			Name:    fmt.Sprintf("inspect %s pak: peak RSS", name),
			Prepull: fmt.Sprintf("%.1f MiB", mib(r.prepullRSS)), Peer: fmt.Sprintf("%.1f MiB (largest process of the pipeline)", mib(r.peerRSS)),
			Ratio: fmt.Sprintf("%.3f", float64(r.prepullRSS)/float64(r.peerRSS)), Target: "< 30 MiB", Met: r.prepullRSS < 30<<20,
		})
	}
	first, last := results[0], results[len(results)-1]
	growth := last.prepull.Seconds() / first.prepull.Seconds()
	peerGrowth := last.peer.Seconds() / first.peer.Seconds()
	b.ReportMetric(growth, "growth-1GiB-vs-10MiB")
	record(b, figure{
		Name:    "inspect: time at 1 GiB / time at 10 MiB (flatness)",
		Prepull: fmt.Sprintf("%.3f", growth), Peer: fmt.Sprintf("%.3f (unzip pipeline)", peerGrowth),
		Ratio: "-", Target: "flat (<= 1.2)", Met: growth <= 1.2,
	})
}

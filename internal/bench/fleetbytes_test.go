//go:build linux

package bench

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prepull/prepull/internal/pak"
	"github.com/prepull/prepull/internal/testenv"
)

// BenchmarkFleetBytes measures what `prepull remote` sends a proxy for one
// pak, against streaming the whole pak as `ssh proxy prepull - < PAK` does
// with OpenSSH (and as prepull remote did before it sent only what the
// proxy needs). Both go to one loopback sshd through a relay that counts
// every byte from the workstation to the proxy: key exchange, login,
// session and data. Paks of 10 MiB and 1 GiB (big content/, built by
// paktest) naming an image the engine holds: the proxy's prepull reads what
// it gets and pulls the image (the first time) or finds it present. Target: at most 64 KiB for the 1 GiB
// pak, flat in the pak's size.
func BenchmarkFleetBytes(b *testing.B) {
	e := newEnv(b)
	ref, p := e.image("bench/bytes", "BytesBench", testenv.ImageOptions{})
	key := testenv.NewSSHKey(b, "")
	sshd := testenv.StartSSHD(b, testenv.SSHDOptions{AuthorizedKeys: []string{key.Public}, Env: []string{"PROXY_CONFIG=" + e.config}})
	port, count := relay(b, sshd.Addr(), 0)
	line := sshd.HostKeyLine(b)
	knownHosts := filepath.Join(e.dir, "known_hosts")
	writeFile(b, knownHosts, fmt.Sprintf("[127.0.0.1]:%d%s\n", port, line[strings.IndexByte(line, ' '):]))
	dest := "root@127.0.0.1:" + strconv.Itoa(port)
	remoteCommand := e.prepull + ` --config "$PROXY_CONFIG"`

	sent := map[int64]int64{}
	for _, size := range smoke([]int64{10 << 20, 1 << 30}, []int64{1 << 20, 2 << 20}) {
		p.ContentBytes = size
		dir := filepath.Join(e.dir, strconv.FormatInt(size, 10))
		if err := os.Mkdir(dir, 0o700); err != nil {
			b.Fatal(err)
		}
		file := p.WriteFile(b, dir)
		st, err := os.Stat(file)
		if err != nil {
			b.Fatal(err)
		}
		f, err := pak.OpenFile(file)
		if err != nil {
			b.Fatal(err)
		}
		slim, err := f.Slim()
		f.Close()
		if err != nil {
			b.Fatal(err)
		}

		// prepull remote.
		before := count.sent(b)
		cmd := e.command("remote", "--json", "--known-hosts", knownHosts, "-i", key.Path, "--remote-command", remoteCommand, "-H", dest, file)
		var stdout strings.Builder
		cmd.Stdout = &stdout
		start := time.Now()
		run(b, cmd)
		took := time.Since(start)
		var rows []struct {
			Status    string `json:"status"`
			Reference string `json:"reference"`
		}
		if err := json.Unmarshal([]byte(stdout.String()), &rows); err != nil || len(rows) != 1 || (rows[0].Status != "present" && rows[0].Status != "pulled") || rows[0].Reference != ref {
			b.Fatalf("prepull remote: %v\n%s", err, stdout.String())
		}
		ours := count.sent(b) - before

		// The whole pak over OpenSSH.
		before = count.sent(b)
		ssh := exec.Command("ssh", "-F", "/dev/null", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
			"-o", "UserKnownHostsFile="+knownHosts, "-o", "GlobalKnownHostsFile=/dev/null",
			"-i", key.Path, "-p", strconv.Itoa(port), "root@127.0.0.1", remoteCommand+" --json -")
		ssh.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + e.dir}
		in, err := os.Open(file)
		if err != nil {
			b.Fatal(err)
		}
		ssh.Stdin = in
		start = time.Now()
		out, err := ssh.CombinedOutput()
		sshTook := time.Since(start)
		in.Close()
		if err != nil || !strings.Contains(string(out), `"exit_code": 0`) {
			b.Fatalf("ssh ... prepull - < %s: %v\n%s", file, err, out)
		}
		theirs := count.sent(b) - before
		sent[size] = ours

		label := fmt.Sprintf("%d MiB", size>>20)
		if size >= 1<<30 {
			label = fmt.Sprintf("%d GiB", size>>30)
		}
		b.ReportMetric(float64(ours), "bytes-sent-"+strings.ReplaceAll(label, " ", ""))
		target, met := "flat in size", true
		if size >= 1<<30 {
			target, met = "<= 64 KiB", ours <= 64<<10
		}
		record(b, figure{
			Name: fmt.Sprintf("fleet bytes, %s pak (%d B): sent from the workstation to one proxy, all SSH traffic (the proxy read a %d B adapter.zip; wall %s, OpenSSH's %s)",
				label, st.Size(), len(slim), fmtDur(took), fmtDur(sshTook)),
			Prepull: fmt.Sprintf("%d B", ours), Peer: fmt.Sprintf("%d B (ssh proxy prepull - < PAK)", theirs),
			Ratio: fmt.Sprintf("%.6f", float64(ours)/float64(theirs)), Target: target, Met: met,
		})
	}
	small, big := sent[10<<20], sent[1<<30]
	record(b, figure{
		Name:    "fleet bytes: sent for the 1 GiB pak / sent for the 10 MiB pak (flatness)",
		Prepull: fmt.Sprintf("%.3f", float64(big)/float64(small)), Peer: "-", Ratio: "-",
		Target: "flat (<= 1.2)", Met: float64(big)/float64(small) <= 1.2,
	})
}

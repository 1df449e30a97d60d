//go:build linux

package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prepull/prepull/internal/testenv"
	"github.com/prepull/prepull/internal/testenv/await"
)

// fleetSize is the number of loopback proxies in the fleet benchmarks.
const fleetSize = 10

// fleetRounds is how many times each fleet run is repeated, alternated.
func fleetRounds() int { return smoke(5, 1) }

// slowConnect is how long the slow host of BenchmarkFleet holds a new
// connection before its SSH server speaks.
const slowConnect = 3 * time.Second

// fleet is fleetSize real OpenSSH servers on loopback, each running the real
// prepull against the benchmark's engine with the benchmark's configuration,
// through a wrapper that logs when each remote command starts and ends.
type fleet struct {
	e          *env
	key        testenv.SSHKey
	knownHosts string
	sshds      []*testenv.SSHD
	wrapper    string // the remote command: logs, then runs prepull
	log        string // where the wrapper logs "HOST start|end UNIXNANO"
	pak        string
	clientCPU  time.Duration // CPU time of the prepull remote runs so far
}

// newFleet starts the servers and writes known_hosts and the wrapper. With
// cleanHome the sessions get HOME set to an empty folder (sshd's SetEnv
// overrides the account's home): the login shell then reads no ~/.bashrc,
// as on a Cloud Proxy, instead of this machine's root's (see BenchmarkFleet).
func newFleet(b *testing.B, e *env, pak string, cleanHome bool) *fleet {
	b.Helper()
	f := &fleet{e: e, key: testenv.NewSSHKey(b, ""), pak: pak}
	dir := b.TempDir()
	sessionEnv := []string{"PROXY_CONFIG=" + e.config}
	if cleanHome {
		home := filepath.Join(dir, "home")
		if err := os.Mkdir(home, 0o700); err != nil {
			b.Fatal(err)
		}
		sessionEnv = append(sessionEnv, "HOME="+home)
	}
	f.log = filepath.Join(dir, "commands.log")
	f.wrapper = filepath.Join(dir, "wrap.sh")
	script := fmt.Sprintf(`#!/bin/sh
printf '%%s start %%s\n' "$FLEET_HOST" "$(date +%%s%%N)" >> %[1]q
%[2]q --config "$PROXY_CONFIG" "$@"
rc=$?
printf '%%s end %%s\n' "$FLEET_HOST" "$(date +%%s%%N)" >> %[1]q
exit $rc
`, f.log, e.prepull)
	if err := os.WriteFile(f.wrapper, []byte(script), 0o755); err != nil {
		b.Fatal(err)
	}
	var lines []string
	for i := range fleetSize {
		s := testenv.StartSSHD(b, testenv.SSHDOptions{
			AuthorizedKeys: []string{f.key.Public},
			Env:            append(slices.Clone(sessionEnv), "FLEET_HOST="+strconv.Itoa(i)),
		})
		f.sshds = append(f.sshds, s)
		lines = append(lines, s.HostKeyLine(b))
	}
	f.knownHosts = filepath.Join(dir, "known_hosts")
	writeFile(b, f.knownHosts, strings.Join(lines, "\n")+"\n")
	return f
}

// addKnown adds host i's key under another port, for a proxy in front of it.
func (f *fleet) addKnown(b *testing.B, i, port int) {
	b.Helper()
	line := f.sshds[i].HostKeyLine(b)
	line = fmt.Sprintf("[127.0.0.1]:%d%s", port, line[strings.IndexByte(line, ' '):])
	file, err := os.OpenFile(f.knownHosts, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer file.Close()
	if _, err := fmt.Fprintln(file, line); err != nil {
		b.Fatal(err)
	}
}

// remote runs prepull remote --json on dests with --parallel parallel and
// the wrapper as the remote command, checks that every host succeeded, and
// returns its wall time and when each host's command started and ended,
// relative to the start of the run. f.clientCPU adds up the CPU time of
// prepull remote itself.
func (f *fleet) remote(b *testing.B, dests []string, parallel int) (time.Duration, map[string][2]time.Duration) {
	b.Helper()
	if err := os.WriteFile(f.log, nil, 0o644); err != nil {
		b.Fatal(err)
	}
	args := []string{"remote", "--json", "--known-hosts", f.knownHosts, "-i", f.key.Path,
		"--remote-command", f.wrapper, "--connect-timeout", "10s", "--parallel", strconv.Itoa(parallel)}
	for _, d := range dests {
		args = append(args, "-H", d)
	}
	cmd := f.e.command(append(args, f.pak)...)
	var stdout strings.Builder
	cmd.Stdout = &stdout
	start := time.Now()
	s := run(b, cmd)
	var rows []struct {
		Host, Status string
		ExitCode     int `json:"exit_code"`
	}
	if err := json.Unmarshal([]byte(stdout.String()), &rows); err != nil || len(rows) != len(dests) {
		b.Fatalf("prepull remote printed %d rows (%v), want %d:\n%s", len(rows), err, len(dests), stdout.String())
	}
	for _, r := range rows {
		if r.ExitCode != 0 {
			b.Fatalf("prepull remote: %s: %s, exit code %d", r.Host, r.Status, r.ExitCode)
		}
	}
	f.clientCPU += s.cpu
	return s.wall, f.commandTimes(b, start)
}

// serverCPU returns the CPU time that the fleet's sshd servers and every
// process they started and reaped (the sessions, the login shells, the
// wrapper and the remote prepull) have used so far: the servers are this
// benchmark binary's children running sshd.
func serverCPU(b *testing.B) time.Duration {
	b.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		b.Fatal(err)
	}
	var ticks int64
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(stat)
		open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || end < open || s[open+1:end] != "sshd" {
			continue
		}
		f := strings.Fields(s[end+1:])
		if len(f) < 15 || f[1] != strconv.Itoa(os.Getpid()) {
			continue
		}
		for _, i := range []int{11, 12, 13, 14} { // utime stime cutime cstime
			n, _ := strconv.ParseInt(f[i], 10, 64)
			ticks += n
		}
	}
	return time.Duration(ticks) * 10 * time.Millisecond // USER_HZ is 100 on Linux
}

// openSSH runs the same remote command as remote, with the pak on its
// standard input, on the first n hosts at once with one OpenSSH ssh client
// each (no ssh_config, strict host keys, the fleet's key), and returns the
// wall time until the last one ended.
func (f *fleet) openSSH(b *testing.B, n int) time.Duration {
	b.Helper()
	cmds := make([]*exec.Cmd, n)
	for i := range n {
		cmd := exec.Command("ssh", "-F", "/dev/null", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
			"-o", "UserKnownHostsFile="+f.knownHosts, "-o", "GlobalKnownHostsFile=/dev/null",
			"-o", "ConnectTimeout=10", "-i", f.key.Path, "-p", strconv.Itoa(f.sshds[i].Port()),
			"root@127.0.0.1", f.wrapper+" --json -")
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + f.e.dir}
		in, err := os.Open(f.pak)
		if err != nil {
			b.Fatal(err)
		}
		defer in.Close()
		cmd.Stdin = in
		cmds[i] = cmd
	}
	errs := make([]error, n)
	outs := make([][]byte, n)
	var wg sync.WaitGroup
	start := time.Now()
	for i, cmd := range cmds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			outs[i], errs[i] = cmd.CombinedOutput()
		}()
	}
	wg.Wait()
	took := time.Since(start)
	for i, err := range errs {
		if err != nil {
			b.Fatalf("ssh to host %d: %v\n%s", i, err, outs[i])
		}
	}
	return took
}

// commandTimes reads the wrapper's log: each host's start and end.
func (f *fleet) commandTimes(b *testing.B, start time.Time) map[string][2]time.Duration {
	b.Helper()
	data, err := os.ReadFile(f.log)
	if err != nil {
		b.Fatal(err)
	}
	out := map[string][2]time.Duration{}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		fields := strings.Fields(line)
		if len(fields) != 3 {
			continue
		}
		ns, err := strconv.ParseInt(fields[2], 10, 64)
		if err != nil {
			b.Fatalf("wrapper log line %q", line)
		}
		t := out[fields[0]]
		at := time.Unix(0, ns).Sub(start)
		if fields[1] == "start" {
			t[0] = at
		} else {
			t[1] = at
		}
		out[fields[0]] = t
	}
	return out
}

// maxOverlap returns how many of the commands ran at once at most.
func maxOverlap(times map[string][2]time.Duration) int {
	type edge struct {
		at    time.Duration
		delta int
	}
	var edges []edge
	for _, t := range times {
		edges = append(edges, edge{t[0], 1}, edge{t[1], -1})
	}
	slices.SortFunc(edges, func(x, y edge) int {
		if x.at != y.at {
			return int(x.at - y.at)
		}
		return x.delta - y.delta // an end before a start at the same instant
	})
	n, m := 0, 0
	for _, e := range edges {
		n += e.delta
		m = max(m, n)
	}
	return m
}

// startsOf returns the start offsets of the hosts in times other than skip.
func startsOf(times map[string][2]time.Duration, skip string) []time.Duration {
	var out []time.Duration
	for h, t := range times {
		if h != skip {
			out = append(out, t[0])
		}
	}
	return out
}

// relay listens on a port of 127.0.0.1 and passes each connection on to
// addr after holding it for delay, as a far or loaded host answers late. It
// returns the port, and counts the bytes passed from the clients to addr.
func relay(b *testing.B, addr string, delay time.Duration) (int, *relayCount) {
	b.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	var count relayCount
	var wg sync.WaitGroup
	b.Cleanup(func() { l.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			count.open.Add(1)
			go func() {
				defer wg.Done()
				defer count.open.Add(-1)
				defer c.Close()
				time.Sleep(delay)
				conn, err := net.Dial("tcp", addr)
				if err != nil {
					return
				}
				defer conn.Close()
				done := make(chan struct{})
				go func() {
					defer close(done)
					n, _ := io.Copy(conn, c)
					count.up.Add(n)
					conn.(*net.TCPConn).CloseWrite()
				}()
				_, _ = io.Copy(c, conn)
				c.Close()
				<-done
			}()
		}
	}()
	return l.Addr().(*net.TCPAddr).Port, &count
}

// relayCount counts what a relay passed on.
type relayCount struct {
	up   atomic.Int64 // bytes from the clients to the server
	open atomic.Int32 // connections not yet closed
}

// sent returns the bytes passed to the server so far, once every
// connection is closed (waiting up to await.Limit for that).
func (c *relayCount) sent(b *testing.B) int64 {
	b.Helper()
	if !await.Until(b, 10*time.Millisecond, func() bool { return c.open.Load() == 0 }) {
		b.Fatalf("relay: %d connections still open", c.open.Load())
	}
	return c.up.Load()
}

// BenchmarkFleet runs `prepull remote` against 10 loopback sshd proxies
// that share the benchmark's engine.
//
// Image present: one host against all 10 with the default --parallel 8
// (two waves) and with --parallel 10, alternated, 5 times each (target: 10
// hosts in at most 2x the time of one).
//
// With pulls: the image removed before each run, 10 hosts with --parallel
// 4; the remote commands' start and end times (logged by a wrapper on each
// host) give how many ran at once (target: never more than --parallel).
//
// A slow host: one of the 10 behind a proxy that holds each connection for
// 3 s; with --parallel 10 the other 9 must start as soon as without it
// (target: no host waits on another's connection).
func BenchmarkFleet(b *testing.B) {
	e := newEnv(b)
	ref, p := e.image("bench/fleet", "FleetBench", testenv.ImageOptions{Size: smoke(24<<20, 1<<20), Layers: 2})
	pak := p.WriteFile(b, e.dir)
	f := newFleet(b, e, pak, true)
	dests := make([]string, fleetSize)
	for i, s := range f.sshds {
		dests[i] = "root@" + s.Addr()
	}

	// Image present.
	f.remote(b, dests[:1], 1)
	if !e.docker.HasImage(b, ref) {
		b.Fatalf("%s is not in the engine after prepull remote", ref)
	}
	var one, ten8, ten10, sshOne, sshTen []time.Duration
	var tenServer, tenClient time.Duration // CPU of the --parallel 10 runs
	for r := range fleetRounds() {
		runs := []func(){
			func() { d, _ := f.remote(b, dests[:1], 8); one = append(one, d) },
			func() { d, _ := f.remote(b, dests, 8); ten8 = append(ten8, d) },
			func() {
				server, client := serverCPU(b), f.clientCPU
				d, _ := f.remote(b, dests, 10)
				time.Sleep(100 * time.Millisecond) // sshd reaps its session processes
				tenServer += serverCPU(b) - server
				tenClient += f.clientCPU - client
				ten10 = append(ten10, d)
			},
			func() { sshOne = append(sshOne, f.openSSH(b, 1)) },
			func() { sshTen = append(sshTen, f.openSSH(b, fleetSize)) },
		}
		if r%2 == 1 {
			slices.Reverse(runs)
		}
		for _, fn := range runs {
			fn()
		}
	}
	o, t8, t10 := median(one), median(ten8), median(ten10)
	so, st := median(sshOne), median(sshTen)
	b.ReportMetric(ms(so), "openssh-1-host-ms")
	b.ReportMetric(ms(st), "openssh-10-hosts-ms")
	b.ReportMetric(ms(o), "present-1-host-ms")
	b.ReportMetric(ms(t8), "present-10-hosts-p8-ms")
	b.ReportMetric(ms(t10), "present-10-hosts-p10-ms")
	b.ReportMetric(t8.Seconds()/o.Seconds(), "x-vs-1-host-p8")
	b.ReportMetric(t10.Seconds()/o.Seconds(), "x-vs-1-host-p10")
	for _, c := range []struct {
		label string
		d     time.Duration
	}{{"--parallel 8 (the default)", t8}, {"--parallel 10", t10}} {
		record(b, figure{
			Name:    fmt.Sprintf("fleet, image present: prepull remote to 10 loopback sshd hosts, %s, median of %d", c.label, fleetRounds()),
			Prepull: fmtDur(c.d), Peer: fmtDur(o) + " (1 host)",
			Ratio: fmt.Sprintf("%.3f", c.d.Seconds()/o.Seconds()), Target: "<= 2", Met: c.d.Seconds()/o.Seconds() <= 2,
		})
	}
	// The CPU the 10-host run needs, all on this machine's cores: its
	// wall time cannot go below that CPU time spread over the cores.
	perHostServer := tenServer / time.Duration(fleetRounds()*fleetSize)
	perRunClient := tenClient / time.Duration(fleetRounds())
	cores := runtime.NumCPU()
	floor := (perHostServer*fleetSize + perRunClient) / time.Duration(cores)
	b.ReportMetric(ms(perHostServer), "server-cpu-ms/host")
	b.ReportMetric(ms(perRunClient), "client-cpu-ms/10-hosts")
	record(b, figure{
		Name: fmt.Sprintf("fleet, 10 hosts: CPU per host on the server side (sshd, login shell, remote prepull) %s, prepull remote's own %s for all 10; "+
			"the 10 proxies share this machine's %d cores, so the run needs at least %s of wall",
			fmtDur(perHostServer), fmtDur(perRunClient), cores, fmtDur(floor)),
		Prepull: fmtDur(t10) + " (--parallel 10)", Peer: fmtDur(floor) + " (CPU floor)",
		Ratio: fmt.Sprintf("%.3f", t10.Seconds()/floor.Seconds()), Target: "(explains the 10-host ratio)", Met: true,
	})
	record(b, figure{
		Name: fmt.Sprintf("fleet, image present: the same remote command to 10 hosts with 10 OpenSSH ssh clients at once, median of %d (1 host: %s, 10 hosts / 1 host = %.3f)",
			fleetRounds(), fmtDur(so), st.Seconds()/so.Seconds()),
		Prepull: fmtDur(t10) + " (prepull remote --parallel 10)", Peer: fmtDur(st) + " (10 x ssh)",
		Ratio: fmt.Sprintf("%.3f", t10.Seconds()/st.Seconds()), Target: "(information)", Met: true,
	})

	// With pulls, --parallel 4.
	var pullOne, pullTen []time.Duration
	overlap := 0
	for r := range 3 {
		e.docker.RemoveImage(b, ref)
		d, _ := f.remote(b, dests[:1], 4)
		pullOne = append(pullOne, d)
		e.docker.RemoveImage(b, ref)
		d, times := f.remote(b, dests, 4)
		pullTen = append(pullTen, d)
		if len(times) != fleetSize {
			b.Fatalf("round %d: the wrapper logged %d hosts, want %d", r, len(times), fleetSize)
		}
		overlap = max(overlap, maxOverlap(times))
	}
	po, pt := median(pullOne), median(pullTen)
	b.ReportMetric(float64(overlap), "pull-max-concurrent-p4")
	b.ReportMetric(ms(po), "pull-1-host-ms")
	b.ReportMetric(ms(pt), "pull-10-hosts-p4-ms")
	record(b, figure{
		Name: fmt.Sprintf("fleet, with pulls, --parallel 4: most remote commands at once over 3 runs (wall %s vs 1 host %s)",
			fmtDur(pt), fmtDur(po)),
		Prepull: strconv.Itoa(overlap), Peer: "4 (--parallel)",
		Ratio: fmt.Sprintf("%.3f", float64(overlap)/4), Target: "<= --parallel", Met: overlap <= 4,
	})

	// One slow host among the 10; the image present, --parallel 10.
	port, _ := relay(b, f.sshds[0].Addr(), slowConnect)
	f.addKnown(b, 0, port)
	slow := slices.Clone(dests)
	slow[0] = fmt.Sprintf("root@127.0.0.1:%d", port)
	var fastWith, fastWithout, slowStarts []time.Duration
	for r := range 3 {
		runs := []func(){
			func() {
				_, times := f.remote(b, slow, 10)
				fastWith = append(fastWith, median(startsOf(times, "0")))
				slowStarts = append(slowStarts, times["0"][0])
			},
			func() {
				_, times := f.remote(b, dests, 10)
				fastWithout = append(fastWithout, median(startsOf(times, "0")))
			},
		}
		if r%2 == 1 {
			slices.Reverse(runs)
		}
		for _, fn := range runs {
			fn()
		}
	}
	fw, fo, ss := median(fastWith), median(fastWithout), median(slowStarts)
	b.ReportMetric(ms(fw), "fast-hosts-start-with-slow-ms")
	b.ReportMetric(ms(fo), "fast-hosts-start-without-ms")
	b.ReportMetric(ms(ss), "slow-host-start-ms")
	record(b, figure{
		Name: fmt.Sprintf("fleet, one host %v slow to connect among 10, --parallel 10: median start of the 9 others' commands (slow host's: %s)",
			slowConnect, fmtDur(ss)),
		Prepull: fmtDur(fw), Peer: fmtDur(fo) + " (same 9, no slow host)",
		Ratio: fmt.Sprintf("%.3f", fw.Seconds()/fo.Seconds()), Target: "no waiting on the slow host",
		Met: fw < fo+slowConnect/3,
	})
}

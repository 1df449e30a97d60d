//go:build linux

package security

import (
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/prepull/prepull/internal/testenv"
)

// nobody is the user the dumpable test runs prepull as: the owner of
// /proc/PID shows dumpability only for a process that is not root's.
const nobody = 65534

// TestSecretHolderNotDumpable runs the one-shot as an ordinary user with a
// password on standard input, and holds it at its first engine call (a
// listener that accepts and answers nothing): by then prepull holds the
// password. Its /proc files must be root's (Linux's sign of
// PR_SET_DUMPABLE 0), and another process of the same user must not read
// them (its environ here; ptrace and core dumps go by the same flag).
func TestSecretHolderNotDumpable(t *testing.T) {
	dir, err := os.MkdirTemp("", "prepull-dumpable-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "prepull")
	copyFile(t, testenv.Prepull(t), bin, 0o755)
	conf := filepath.Join(dir, "MyAdapter.conf")
	config := filepath.Join(dir, "config.yaml")
	for path, body := range map[string]string{
		conf:   "KINDKEY=MyAdapter\nREGISTRY=reg.example\nREPOSITORY=vendor/adapter\nDIGEST=sha256:" + strings.Repeat("a", 64) + "\n",
		config: "registries: []\n",
	} {
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	engine, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer engine.Close()

	cmd := exec.Command(bin, "--config", config, "--docker-host", "tcp://"+engine.Addr().String(),
		"--registry", "reg.example", "--username", "u", "--password-stdin", conf)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir}
	cmd.Stdin = strings.NewReader("topsecret-dumpable\n")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	accepted := make(chan net.Conn, 1)
	go func() {
		if c, err := engine.Accept(); err == nil {
			accepted <- c
		}
	}()
	select {
	case err := <-exited:
		t.Fatalf("prepull ended (%v) before it called the engine:\n%s", err, stderr.String())
	case c := <-accepted:
		defer func() {
			c.Close()
			cmd.Process.Kill()
			<-exited
		}()
	}

	proc := "/proc/" + strconv.Itoa(cmd.Process.Pid)
	st, err := os.Stat(proc + "/environ")
	if err != nil {
		t.Fatal(err)
	}
	if uid := st.Sys().(*syscall.Stat_t).Uid; uid != 0 {
		t.Errorf("%s/environ is owned by uid %d, the process's user: prepull holding a password is dumpable", proc, uid)
	}
	peek := exec.Command("dd", "if="+proc+"/environ", "of=/dev/null", "count=1")
	peek.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	if out, err := peek.CombinedOutput(); err == nil {
		t.Errorf("another process of prepull's user read %s/environ:\n%s", proc, out)
	}
}

// copyFile copies src to dst with mode.
func copyFile(t *testing.T, src, dst string, mode os.FileMode) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_EXCL, mode)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

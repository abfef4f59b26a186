// Package redisserver runs a real redis-server for tests: on a random free
// loopback port, without persistence, killed when the test ends. If the
// binary is missing and the test runs as root, it installs the Debian package
// once per process; if redis-server still cannot be found the test fails
// (it never skips: CI must run the Redis tests).
package redisserver

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	// readyWithin bounds how long a fresh server may take to answer PING.
	readyWithin = 15 * time.Second
	// installWithin bounds apt-get update plus apt-get install.
	installWithin = 5 * time.Minute
)

// Server is one running (or killed) redis-server owned by a test.
type Server struct {
	t    testing.TB
	bin  string
	dir  string
	port int

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
}

// Start runs a redis-server for t and returns once it answers PING. The
// server is killed in t.Cleanup.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := find()
	if err != nil {
		t.Fatalf("redisserver: %v", err)
	}
	s := &Server{t: t, bin: bin, dir: t.TempDir()}
	t.Cleanup(s.Kill)
	// A free port can be taken between probing and binding; try a few.
	for attempt := 0; ; attempt++ {
		port, err := freePort()
		if err != nil {
			t.Fatalf("redisserver: %v", err)
		}
		s.port = port
		err = s.start()
		if err == nil {
			return s
		}
		if attempt == 4 {
			t.Fatalf("redisserver: %v", err)
		}
	}
}

// Addr is the server's host:port.
func (s *Server) Addr() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
}

// Kill sends SIGKILL and waits for the process to exit, as if Redis had
// crashed. Killing a killed server does nothing.
func (s *Server) Kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	select {
	case <-s.done:
	default:
		_ = s.cmd.Process.Signal(syscall.SIGKILL)
		<-s.done
	}
	s.cmd = nil
}

// Restart kills the server if it runs and starts an empty one on the same
// port.
func (s *Server) Restart() {
	s.t.Helper()
	s.Kill()
	if err := s.start(); err != nil {
		s.t.Fatalf("redisserver: restart: %v", err)
	}
}

// start runs the binary on s.port and waits for PING.
func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	cmd := exec.Command(s.bin,
		"--port", strconv.Itoa(s.port),
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", "no",
		"--daemonize", "no",
		"--dir", s.dir,
	)
	out := &lockedBuffer{}
	cmd.Stdout = out
	cmd.Stderr = out
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", s.bin, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	s.cmd, s.done = cmd, done
	if err := waitReady(s.Addr(), done); err != nil {
		_ = cmd.Process.Signal(syscall.SIGKILL)
		<-done
		s.cmd = nil
		return fmt.Errorf("%s on port %d: %w\n%s", s.bin, s.port, err, out.String())
	}
	return nil
}

// waitReady polls addr with PING until it answers PONG, the process exits
// or readyWithin passes.
func waitReady(addr string, exited <-chan struct{}) error {
	deadline := time.Now().Add(readyWithin)
	for {
		select {
		case <-exited:
			return fmt.Errorf("exited before answering PING")
		default:
		}
		if ping(addr) == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no PONG within %v", readyWithin)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ping sends one inline PING and expects +PONG.
func ping(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if strings.TrimSpace(line) != "+PONG" {
		return fmt.Errorf("PING answered %q", line)
	}
	return nil
}

// freePort asks the kernel for a free loopback TCP port.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// find returns the redis-server path, installing the package first (once
// per process) if it is missing and we are root.
var find = sync.OnceValues(func() (string, error) {
	if p, err := lookPath(); err == nil {
		return p, nil
	}
	if os.Geteuid() != 0 {
		return "", fmt.Errorf("redis-server is not on PATH and this test is not root, so it cannot install it; " +
			"run `make deps` or `sudo apt-get install -y redis-server`")
	}
	if err := install(); err != nil {
		return "", fmt.Errorf("redis-server is not on PATH and installing it failed: %w", err)
	}
	p, err := lookPath()
	if err != nil {
		return "", fmt.Errorf("redis-server still not found after apt-get install redis-server: %w", err)
	}
	return p, nil
})

// lookPath finds redis-server on PATH or where Debian puts it.
func lookPath() (string, error) {
	if p, err := exec.LookPath("redis-server"); err == nil {
		return p, nil
	}
	const debian = "/usr/bin/redis-server"
	if _, err := os.Stat(debian); err == nil {
		return debian, nil
	}
	return "", fmt.Errorf("redis-server not found on PATH")
}

// install runs apt-get update and apt-get install -y redis-server within
// installWithin. Test binaries of several packages may race to install; the
// dpkg lock timeout makes the later ones wait instead of failing.
func install() error {
	ctx, cancel := context.WithTimeout(context.Background(), installWithin)
	defer cancel()
	steps := [][]string{
		{"apt-get", "-o", "DPkg::Lock::Timeout=120", "update"},
		{"apt-get", "-o", "DPkg::Lock::Timeout=120", "install", "-y", "--no-install-recommends", "redis-server"},
	}
	for _, args := range steps {
		cmd := exec.CommandContext(ctx, args[0], args[1:]...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("%s: %w\n%s", strings.Join(args, " "), err, tail(out, 2000))
		}
	}
	return nil
}

// tail returns the last n bytes of b.
func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// lockedBuffer collects the server's output; the exec copier writes while a
// failing start reads.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

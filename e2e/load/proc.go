package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/llmproc/llmproc/filter/config"
)

// child is a server process the driver started. Its CPU time is read from
// /proc, so the driver's own work never counts as the server's.
type child struct {
	name     string
	cmd      *exec.Cmd
	addr     string // gRPC, 127.0.0.1:port
	httpAddr string // llmproc's /metrics and pprof listener; "" for noop
	log      string // the child's stderr
	exited   chan struct{}
	waitErr  error
	// pid is a server the driver did not start (-addr, -target): 0 when
	// its CPU time is not known.
	pid int
	// cpus is the -server-cpus set a spawned server must run on; aff is
	// what /proc said at the last check.
	cpus cpuSet
	aff  affinity
}

// procID is the server's process id, 0 when unknown.
func (c *child) procID() int {
	if c.cmd != nil {
		return c.cmd.Process.Pid
	}
	return c.pid
}

// checkPinned reads where the server's threads may run (and ran) and, for a
// spawned server under -server-cpus, fails unless that is exactly the set
// it was started on.
func (c *child) checkPinned() error {
	pid := c.procID()
	if pid <= 0 {
		return nil
	}
	a, err := checkPinned(c.name, pid, c.cpus)
	if err != nil {
		return err
	}
	c.aff = a
	return nil
}

// start runs the command and waits until addr accepts connections.
// A non-empty cpus runs it under `taskset -c cpus` (taskset execs the
// command, so the pid is the server's).
func start(ctx context.Context, name, addr, logPath string, env []string, cpus, bin string, args ...string) (*child, error) {
	want, err := parseCPUList(cpus)
	if err != nil {
		return nil, fmt.Errorf("-server-cpus: %w", err)
	}
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	if cpus != "" {
		args = append([]string{"-c", cpus, bin}, args...)
		bin = "taskset"
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = childAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s server: %w", name, err)
	}
	c := &child{name: name, cmd: cmd, addr: addr, log: logPath, exited: make(chan struct{}), cpus: want}
	go func() {
		c.waitErr = cmd.Wait()
		close(c.exited)
	}()
	deadline := time.Now().Add(30 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			conn.Close()
			return c, nil
		}
		select {
		case <-c.exited:
			return nil, fmt.Errorf("%s server exited before serving (%v)%s", name, c.waitErr, c.tail())
		case <-ctx.Done():
			c.stop()
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			c.stop()
			return nil, fmt.Errorf("%s server did not listen on %s within 30s%s", name, addr, c.tail())
		}
	}
}

// stop ends the child: SIGTERM, then SIGKILL after 5 seconds.
func (c *child) stop() {
	if c.cmd == nil {
		return
	}
	select {
	case <-c.exited:
		return
	default:
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.exited:
	case <-time.After(5 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.exited
	}
}

// alive reports an error if the child has exited.
func (c *child) alive() error {
	if c.cmd == nil {
		return nil
	}
	select {
	case <-c.exited:
		return fmt.Errorf("%s server exited (%v)%s", c.name, c.waitErr, c.tail())
	default:
		return nil
	}
}

// tail is the end of the child's log, for error messages.
func (c *child) tail() string {
	b, err := os.ReadFile(c.log)
	if err != nil || len(b) == 0 {
		return ""
	}
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return "; its log ends:\n" + string(b)
}

// userHZ is the unit of utime and stime in /proc/<pid>/stat. The kernel
// reports them in USER_HZ, which is 100 on every Linux architecture's ABI.
const userHZ = 100

// cpuTime reads a process's user+system CPU time from /proc/<pid>/stat.
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, fmt.Errorf("server CPU: %w (the driver reads /proc, so it needs Linux)", err)
	}
	// The command name is in parentheses and may contain anything; the
	// fields after its closing parenthesis start with field 3 (state).
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("server CPU: malformed /proc/%d/stat", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	// utime and stime are fields 14 and 15, i.e. f[11] and f[12].
	if len(f) < 13 {
		return 0, fmt.Errorf("server CPU: short /proc/%d/stat", pid)
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("server CPU: /proc/%d/stat: %w", pid, err)
	}
	return time.Duration(ut+st) * time.Second / userHZ, nil
}

// freeAddr returns a 127.0.0.1 address with a port that was free a moment ago.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// writeConfig copies the config at src to dst with the listen addresses
// replaced (and pprof on when asked), leaving everything else as written.
func writeConfig(src, dst, grpcAddr, httpAddr string, pprof bool) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return fmt.Errorf("%s: %w", src, err)
	}
	if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return fmt.Errorf("%s: not a YAML mapping", src)
	}
	listen := mapValue(doc.Content[0], "listen", yaml.MappingNode)
	mapValue(listen, "grpc", yaml.ScalarNode).SetString(grpcAddr)
	mapValue(listen, "http", yaml.ScalarNode).SetString(httpAddr)
	if pprof {
		v := mapValue(listen, "pprof", yaml.ScalarNode)
		v.Tag, v.Value, v.Style = "!!bool", "true", 0
	}
	out, err := yaml.Marshal(&doc)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, out, 0o600)
}

// mapValue returns the value node for key in a mapping, adding an empty one
// of the given kind when missing.
func mapValue(m *yaml.Node, key string, kind yaml.Kind) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			v := m.Content[i+1]
			if v.Kind != kind {
				*v = yaml.Node{Kind: kind}
			}
			return v
		}
	}
	v := &yaml.Node{Kind: kind}
	if kind == yaml.MappingNode {
		v.Tag = "!!map"
	}
	m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key}, v)
	return v
}

// credentialEnv returns env with a dummy value for every credential env var
// the config names and env lacks: the driver never reaches a provider.
func credentialEnv(cfg *config.Config, env []string) []string {
	out := append([]string(nil), env...)
	for _, b := range cfg.Backends {
		name := b.Credential.Env
		if name == "" || os.Getenv(name) != "" {
			continue
		}
		out = append(out, name+"=sk-load-dummy-"+strings.ToLower(name))
	}
	return out
}

// awsDummies are the credentials a Bedrock backend's default chain finds
// (the driver never reaches AWS); the metadata service is turned off so a
// missing variable fails fast instead of waiting on IMDS.
var awsDummies = [][2]string{
	{"AWS_ACCESS_KEY_ID", "AKIDLOADDRIVER"}, {"AWS_SECRET_ACCESS_KEY", "load-driver-dummy-secret"},
	{"AWS_REGION", "us-east-1"}, {"AWS_EC2_METADATA_DISABLED", "true"},
}

// setAWSDummies sets them in the driver's environment (unless set), which
// the spawned llmproc and the in-process probe both use.
func setAWSDummies() {
	for _, kv := range awsDummies {
		if os.Getenv(kv[0]) == "" {
			os.Setenv(kv[0], kv[1])
		}
	}
}

// buildLlmproc builds cmd/llmproc into dir and returns the binary's path.
func buildLlmproc(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "llmproc")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/llmproc/llmproc/cmd/llmproc")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build ./cmd/llmproc: %w\n%s", err, out.Bytes())
	}
	return bin, nil
}

package config

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"gopkg.in/yaml.v3"
)

// Defaults applied by Load to fields left empty.
const (
	DefaultGRPC            = "127.0.0.1:50051"
	DefaultHTTP            = "127.0.0.1:9090"
	DefaultMaxRequestBytes = 8 << 20
	DefaultMaxJSONDepth    = 64
	DefaultShutdownGrace   = 30 * time.Second
	DefaultReloadInterval  = 2 * time.Second
	DefaultEnvoyListen     = "0.0.0.0:10000"
	DefaultEnvoyAdmin      = "127.0.0.1:9901"
	DefaultMessageTimeout  = 10 * time.Second
	DefaultNumRetries      = 2
	DefaultPerTryTimeout   = 120 * time.Second
	DefaultIdleTimeout     = 300 * time.Second
	// DefaultMaxConcurrentRequests is Envoy's own default max_requests.
	DefaultMaxConcurrentRequests = 1024
	// MaxConcurrentRequests bounds envoy.max_concurrent_requests, so the
	// thresholds derived from it fit Envoy's uint32 fields.
	MaxConcurrentRequests = 1 << 24
	// DefaultMaxAnswerBufferBytes and DefaultMaxBufferedBytes are
	// limits.max_answer_buffer_bytes and limits.max_buffered_bytes.
	DefaultMaxAnswerBufferBytes = 32 << 20
	DefaultMaxBufferedBytes     = 512 << 20
	// DefaultMaxStreams is limits.max_streams: 10,000 open pass-through
	// streams measured about 25 KB of RSS each (e2e/load -hold).
	DefaultMaxStreams = 10000
	// MaxMaxStreams bounds limits.max_streams.
	MaxMaxStreams = 1 << 20
)

// Load reads, strictly decodes, defaults and validates a config file. The
// returned error lists every problem found, each naming its field path.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	cfg, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	cfg.loaded = &digest{sum: sha256.Sum256(data)}
	return cfg, nil
}

// Version names the config file as loaded: the first 12 hex digits of its
// SHA-256, the same on every replica that loaded the same bytes; "" for a
// config from Parse.
func (c *Config) Version() string {
	if c.loaded == nil {
		return ""
	}
	return hex.EncodeToString(c.loaded.sum[:6])
}

// Parse is Load without the file: decode with unknown keys rejected, apply
// defaults, validate. Decoding problems (unknown keys, wrong types, bad prices
// or durations) are reported together, each naming its field path and line;
// if decoding succeeds, every validation problem is reported.
func Parse(data []byte) (*Config, error) {
	var cfg Config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("the file is empty")
		}
		return nil, explainYAML(data, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, errors.New("the file holds more than one YAML document; llmproc reads exactly one")
	}
	cfg.applyDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &cfg, nil
}

func (c *Config) applyDefaults() {
	setDefault(&c.Listen.GRPC, DefaultGRPC)
	setDefault(&c.Listen.HTTP, DefaultHTTP)
	setDefault(&c.Log.Level, "info")
	setDefault(&c.Log.Format, "json")
	if c.Limits.MaxRequestBytes == 0 {
		c.Limits.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if c.Limits.MaxJSONDepth == 0 {
		c.Limits.MaxJSONDepth = DefaultMaxJSONDepth
	}
	if c.Limits.MaxAnswerBufferBytes == 0 {
		c.Limits.MaxAnswerBufferBytes = DefaultMaxAnswerBufferBytes
	}
	if c.Limits.MaxBufferedBytes == 0 {
		c.Limits.MaxBufferedBytes = max(DefaultMaxBufferedBytes, c.Limits.MaxAnswerBufferBytes)
	}
	if c.Limits.MaxStreams == 0 {
		c.Limits.MaxStreams = DefaultMaxStreams
	}
	if c.Limits.ShutdownGrace.Duration == 0 {
		c.Limits.ShutdownGrace.Duration = DefaultShutdownGrace
	}
	if c.Limits.ReloadInterval == nil {
		c.Limits.ReloadInterval = &Duration{DefaultReloadInterval}
	}
	setDefault(&c.Envoy.Listen, DefaultEnvoyListen)
	setDefault(&c.Envoy.Admin, DefaultEnvoyAdmin)
	setDefault(&c.Envoy.LLMProc, c.Listen.GRPC)
	if c.Envoy.MessageTimeout.Duration == 0 {
		c.Envoy.MessageTimeout.Duration = DefaultMessageTimeout
	}
	if c.Envoy.NumRetries == nil {
		n := uint32(DefaultNumRetries)
		c.Envoy.NumRetries = &n
	}
	if c.Envoy.PerTryTimeout.Duration == 0 {
		c.Envoy.PerTryTimeout.Duration = DefaultPerTryTimeout
	}
	if c.Envoy.IdleTimeout.Duration == 0 {
		c.Envoy.IdleTimeout.Duration = DefaultIdleTimeout
	}
	if c.Envoy.MaxConcurrentRequests == 0 {
		c.Envoy.MaxConcurrentRequests = DefaultMaxConcurrentRequests
	}
	setDefault(&c.Cache.Mode, "deterministic")
	setDefault(&c.Cache.Match, MatchExact)
	c.Cache.Semantic.applyDefaults()
	setDefault(&c.Identity.Source, SourceHeader)
	if c.Cache.TTL.Duration == 0 {
		c.Cache.TTL.Duration = time.Hour
	}
	if c.Cache.MaxEntryBytes == 0 {
		c.Cache.MaxEntryBytes = 1 << 20
	}
	if c.Cache.MemoryMB == 0 {
		c.Cache.MemoryMB = 256
	}
	conv := &c.Cache.Conversations
	setDefault(&conv.Mode, "on")
	if conv.TTL.Duration == 0 {
		conv.TTL.Duration = 24 * time.Hour
	}
	if conv.MaxBytes == 0 {
		conv.MaxBytes = 4 << 20
	}
	if conv.MemoryMB == 0 {
		conv.MemoryMB = 64
	}
	fb := &c.Feedback
	setDefault(&fb.Mode, "on")
	if fb.Window.Duration == 0 {
		fb.Window.Duration = 24 * time.Hour
	}
	if fb.MaxRecords == 0 {
		fb.MaxRecords = 100_000
	}
	if r := c.Cache.Redis; r != nil {
		if r.Timeout.Duration == 0 {
			r.Timeout.Duration = 50 * time.Millisecond
		}
		setDefault(&r.KeyPrefix, "llmproc:")
	}
	for i := range c.Models {
		setDefault(&c.Models[i].OwnedBy, "llmproc")
	}
	c.Tracing.applyDefaults()
}

func setDefault(s *string, v string) {
	if *s == "" {
		*s = v
	}
}

package server

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/llmproc/llmproc/e2e/redisserver"
	"github.com/llmproc/llmproc/filter/budget"
	"github.com/llmproc/llmproc/filter/config"
)

// TestBudgetRedisMustNotEvict: a budget Redis that may evict keys would
// reset counters (a tenant's spend back to 0) under cache traffic; start
// refuses it. Sharing it with the cache is warned about.
func TestBudgetRedisMustNotEvict(t *testing.T) {
	srv := redisserver.Start(t)
	red := budget.NewRedis(budget.RedisOptions{Addr: srv.Addr(), Timeout: time.Second})
	defer red.Close()
	cfg := &config.Config{
		BudgetStore: config.BudgetStore{Redis: &config.BudgetRedis{Addr: srv.Addr()}},
		Cache:       config.Cache{Mode: "all", Redis: &config.Redis{Addr: srv.Addr()}},
	}
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	if err := checkEviction(cfg, red, log); err != nil {
		t.Fatalf("noeviction refused: %v", err)
	}
	if !strings.Contains(logs.String(), "share one Redis") {
		t.Errorf("no warning for a shared Redis:\n%s", logs.String())
	}
	c := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer c.Close()
	if err := c.ConfigSet(context.Background(), "maxmemory-policy", "allkeys-lru").Err(); err != nil {
		t.Fatal(err)
	}
	err := checkEviction(cfg, red, log)
	if err == nil || !strings.Contains(err.Error(), "budget_store.redis") || !strings.Contains(err.Error(), "allkeys-lru") {
		t.Fatalf("evicting policy: %v", err)
	}
}

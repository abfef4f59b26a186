// Package redisconn builds the go-redis client the shared cache tier and the
// budget store both use: every call, dial included, returns within one
// timeout, with no retries (a retry could apply a budget script twice and
// would break the bound anyway).
package redisconn

import (
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// Options are the connection settings.
type Options struct {
	Addr     string // host:port
	Password string
	DB       int
	Timeout  time.Duration // bounds every call, dial included
	PoolSize int
}

// New returns a client for o.Addr. It does not connect until the first call.
func New(o Options) *redis.Client {
	t := o.Timeout
	return redis.NewClient(&redis.Options{
		Addr:     o.Addr,
		Password: o.Password,
		DB:       o.DB,
		// RESP2 needs no HELLO round trip and no push handling.
		Protocol: 2,
		// One attempt per call, each bounded by t: a retry, a dial retry or
		// a wait for a pooled connection would all exceed the bound.
		MaxRetries:            -1,
		DialerRetries:         1,
		DialTimeout:           t,
		ReadTimeout:           t,
		WriteTimeout:          t,
		PoolTimeout:           t,
		ContextTimeoutEnabled: true,
		PoolSize:              o.PoolSize,
		MinIdleConns:          1,
		// No CLIENT SETINFO or CLIENT MAINT_NOTIFICATIONS on connect: fewer
		// round trips inside the bound, and nothing a plain Redis rejects.
		DisableIdentity:          true,
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
	})
}

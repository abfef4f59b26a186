package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/llmproc/llmproc/filter/config"
	"github.com/llmproc/llmproc/filter/identity"
	"github.com/llmproc/llmproc/filter/redisconn"
)

// keyStoreFlags say where `llmproc keys` reads and writes: a keys file, a
// Redis key store, or whichever of the two a config's identity section names
// (Redis when it has identity.redis).
type keyStoreFlags struct {
	file, redis, prefix, config *string
}

func (k *keyStoreFlags) register(fs *flag.FlagSet) {
	k.file = fs.String("file", "", "the keys file (identity.keys_file)")
	k.redis = fs.String("redis", "", "the Redis key store's host:port (identity.redis.addr); its password from $LLMPROC_REDIS_PASSWORD")
	k.prefix = fs.String("redis-prefix", identity.DefaultRedisPrefix, "the Redis key store's prefix (identity.redis.prefix)")
	k.config = fs.String("config", "", "an llmproc config: its identity.redis, else its identity.keys_file")
}

// keyStore is one of the two stores, for the subcommands.
type keyStore interface {
	Create(tmpl identity.Key, now time.Time) (string, identity.Key, error)
	List() ([]identity.Key, error)
	Revoke(id string, now time.Time) error
	Update(id string, f func(*identity.Key)) (identity.Key, error)
	Where() string
	Close() error
}

func (k *keyStoreFlags) open() (keyStore, error) {
	n := 0
	for _, s := range []string{*k.file, *k.redis, *k.config} {
		if s != "" {
			n++
		}
	}
	if n != 1 {
		return nil, errors.New("give one of -file, -redis and -config")
	}
	switch {
	case *k.file != "":
		return fileStore(*k.file), nil
	case *k.redis != "":
		return openRedis(*k.redis, os.Getenv("LLMPROC_REDIS_PASSWORD"), *k.prefix, time.Second), nil
	}
	cfg, err := config.Load(*k.config)
	if err != nil {
		return nil, err
	}
	id := cfg.Identity
	if id.Source != config.SourceClientKeys {
		return nil, fmt.Errorf("%s: identity.source is %q, not client_keys", *k.config, id.Source)
	}
	if r := id.Redis; r != nil {
		rt, err := config.Compile(cfg, nil) // reads identity.redis.password
		if err != nil {
			return nil, err
		}
		timeout := r.Timeout.Duration
		if timeout == 0 {
			timeout = time.Second
		}
		return openRedis(r.Addr, rt.IdentityRedisPassword, r.Prefix, timeout), nil
	}
	return fileStore(id.KeysFile), nil
}

type fileStore string

func (f fileStore) Create(tmpl identity.Key, now time.Time) (string, identity.Key, error) {
	return identity.Create(string(f), tmpl, now, nil)
}
func (f fileStore) List() ([]identity.Key, error)         { return identity.List(string(f)) }
func (f fileStore) Revoke(id string, now time.Time) error { return identity.Revoke(string(f), id, now) }
func (f fileStore) Update(id string, fn func(*identity.Key)) (identity.Key, error) {
	return identity.Update(string(f), id, fn)
}
func (f fileStore) Where() string { return string(f) }
func (f fileStore) Close() error  { return nil }

type redisStore struct {
	s     *identity.RedisStore
	close func() error
	where string
}

func openRedis(addr, password, prefix string, timeout time.Duration) *redisStore {
	c := redisconn.New(redisconn.Options{Addr: addr, Password: password, Timeout: timeout, PoolSize: 1})
	if prefix == "" {
		prefix = identity.DefaultRedisPrefix
	}
	return &redisStore{s: identity.NewRedisStore(c, prefix), close: c.Close, where: "redis " + addr + " (" + prefix + "keys)"}
}

func (r *redisStore) Create(tmpl identity.Key, now time.Time) (string, identity.Key, error) {
	return r.s.Create(context.Background(), tmpl, now, nil)
}
func (r *redisStore) List() ([]identity.Key, error) { return r.s.List(context.Background()) }
func (r *redisStore) Revoke(id string, now time.Time) error {
	return r.s.Revoke(context.Background(), id, now)
}
func (r *redisStore) Update(id string, f func(*identity.Key)) (identity.Key, error) {
	return r.s.Update(context.Background(), id, f)
}
func (r *redisStore) Where() string { return r.where }
func (r *redisStore) Close() error  { return r.close() }

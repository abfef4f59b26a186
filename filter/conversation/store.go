package conversation

import (
	"context"
	"time"

	"github.com/llmproc/llmproc/filter/cache"
)

// Tier is one store of records: the cache package's Local and Redis.
type Tier interface {
	cache.Store
	// Delete removes k, reporting whether it was there.
	Delete(ctx context.Context, k cache.Key) (bool, error)
}

// Store keeps records in an in-process tier and, when set, a shared one
// (Redis) that every replica reads. With a shared tier, reads go to it
// first: it is the one every replica writes and deletes in, so a record
// deleted through one replica is gone for all of them; the in-process tier
// answers when the shared one fails. A tier that fails never fails the
// request: the record is then not found, or not kept.
type Store struct {
	Local, Shared Tier
	TTL           time.Duration
	MaxBytes      int // a record larger than this is not kept
	Now           func() time.Time
	// OnError, when set, is told of every failure of the shared tier.
	OnError func(op string, err error)
}

// Get returns tenant's record id.
func (s *Store) Get(ctx context.Context, tenant, id string) (Record, bool) {
	k := Key(tenant, id)
	if s.Shared != nil {
		e, ok, err := s.Shared.Get(ctx, k)
		if err == nil {
			if !ok {
				return Record{}, false
			}
			return s.decode(e)
		}
		s.failed("get", err)
	}
	e, ok, err := s.Local.Get(ctx, k)
	if err != nil || !ok {
		return Record{}, false
	}
	return s.decode(e)
}

func (s *Store) decode(e cache.Entry) (Record, bool) {
	if s.Now().Sub(e.Stored) >= s.TTL {
		return Record{}, false
	}
	r, err := Decode(e.Completion)
	return r, err == nil
}

// Put keeps rec as tenant's, under its id, in every tier; a record over
// MaxBytes is not kept (ok false). The shared tier is written in the
// background: the client's last chunk does not wait for Redis.
func (s *Store) Put(tenant string, rec Record) (ok bool) {
	if rec.Size() > s.MaxBytes || rec.ID() == "" {
		return false
	}
	k, e := Key(tenant, rec.ID()), cache.Entry{Completion: rec.Encode(), Stored: s.Now()}
	_ = s.Local.Set(context.Background(), k, e, s.TTL)
	if s.Shared != nil {
		go func() {
			if err := s.Shared.Set(context.Background(), k, e, s.TTL); err != nil {
				s.failed("set", err)
			}
		}()
	}
	return true
}

// Delete removes tenant's record id from every tier, reporting whether
// one held it.
func (s *Store) Delete(ctx context.Context, tenant, id string) bool {
	k := Key(tenant, id)
	found, _ := s.Local.Delete(ctx, k)
	if s.Shared != nil {
		ok, err := s.Shared.Delete(ctx, k)
		if err != nil {
			s.failed("delete", err)
		}
		found = found || ok
	}
	return found
}

func (s *Store) failed(op string, err error) {
	if s.OnError != nil {
		s.OnError(op, err)
	}
}

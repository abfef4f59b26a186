package feedback

import (
	"context"
	"time"
)

// Tier is one store of records and claims: Local (in process) and Redis.
type Tier interface {
	// Get returns the value under key; ok false when there is none.
	Get(ctx context.Context, key string) (v []byte, ok bool, err error)
	// Put stores v under key for ttl, unless the value there is of a later
	// attempt: Envoy's attempts of one request end in order, but their
	// writes may land out of it.
	Put(ctx context.Context, key string, v []byte, attempt int, ttl time.Duration) error
	// Claim stores a marker under key for ttl unless one is there, and
	// reports whether this call stored it.
	Claim(ctx context.Context, key string, ttl time.Duration) (bool, error)
}

// Store keeps records for Window in an in-process tier and, when set, a
// shared one (Redis) every replica reads. Reads go to the shared tier
// first (a later attempt may have been answered through another replica's
// upstream role), then to the in-process one, which answers when the shared
// tier fails or has not been written yet (its write follows the answer). A
// tier that fails never fails a request: the record is then not kept there,
// or not found.
type Store struct {
	Local, Shared Tier
	Window        time.Duration
	Now           func() time.Time
	// OnError, when set, is told of every failure of the shared tier.
	OnError func(op string, err error)
}

// Put keeps rec under its tenant and request id in every tier; the shared
// tier is written in the background, so the client's last chunk does not
// wait for Redis.
func (s *Store) Put(rec Record) {
	if rec.RequestID == "" {
		return
	}
	k, v := recordKey(rec.Tenant, rec.RequestID), rec.Encode()
	_ = s.Local.Put(context.Background(), k, v, rec.Attempts, s.Window)
	if s.Shared != nil {
		go func() {
			if err := s.Shared.Put(context.Background(), k, v, rec.Attempts, s.Window); err != nil {
				s.failed("put", err)
			}
		}()
	}
}

// Get returns tenant's record of request id, if it is within the window.
// Another tenant's request of that id is not found.
func (s *Store) Get(ctx context.Context, tenant, id string) (Record, bool) {
	k := recordKey(tenant, id)
	if s.Shared != nil {
		v, ok, err := s.Shared.Get(ctx, k)
		if err != nil {
			s.failed("get", err)
		}
		if ok {
			if r, ok := s.fresh(v); ok {
				return r, true
			}
		}
	}
	v, ok, err := s.Local.Get(ctx, k)
	if err != nil || !ok {
		return Record{}, false
	}
	return s.fresh(v)
}

func (s *Store) fresh(v []byte) (Record, bool) {
	r, err := Decode(v)
	if err != nil || s.Now().Sub(r.Time) >= s.Window {
		return Record{}, false
	}
	return r, true
}

// Claim reports whether this is the first feedback for tenant's request id
// (and marks it taken for the rest of the window). With a shared tier the
// claim is made there, so two replicas never both accept one request's
// feedback; when it fails, the in-process tier decides alone.
func (s *Store) Claim(ctx context.Context, tenant, id string) bool {
	k := claimKey(tenant, id)
	if s.Shared != nil {
		ok, err := s.Shared.Claim(ctx, k, s.Window)
		if err == nil {
			_, _ = s.Local.Claim(ctx, k, s.Window)
			return ok
		}
		s.failed("claim", err)
	}
	ok, _ := s.Local.Claim(ctx, k, s.Window)
	return ok
}

func (s *Store) failed(op string, err error) {
	if s.OnError != nil {
		s.OnError(op, err)
	}
}

package extproc

// Rotating a provider key without downtime: a backend may have two keys
// (backends[].credential and credential_next). The upstream role sends the
// first; when the provider refuses it (401 or 403) that key is marked
// failing for CredentialFailingFor and attempts send the other, Envoy's
// retry of the refused attempt included: the answer carries
// HeaderCredentialRetry, which the rendered route retries on and removes.
// The marks are this replica's own (each replica learns from its own
// attempts, one refused attempt each, retried); they are keyed by the key
// itself, so a key file that changes starts with a clean slate.

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"sync"
	"time"

	"github.com/llmproc/llmproc/filter/config"
)

// CredentialFailingFor is how long a key the provider refused stays marked
// failing while its backend has another: attempts send the other one
// meanwhile, then try it again, so a key restored at the provider comes
// back on its own.
const CredentialFailingFor = time.Minute

// HeaderCredentialRetry is set on a provider's 401 or 403 answer when the
// backend has another key not marked failing: the rendered pool route
// retries on it (retry_on retriable-headers) and removes it before an
// answer reaches the client.
const HeaderCredentialRetry = "x-llmproc-credential-retry"

// Credential slots: the config field a key came from, the slot label of the
// credential metrics.
const (
	SlotCredential     = "credential"
	SlotCredentialNext = "credential_next"
)

// keyHealth holds the keys providers refused, until when.
type keyHealth struct {
	mu      sync.Mutex
	failing map[failingKey]time.Time
}

type failingKey struct{ backend, key string }

// choose returns the backend as the attempt sends it and the slot of its
// key ("" when it has none): be itself, or, when be has two keys and its
// first is marked failing while its second is not, a copy whose Credential
// is the second (and CredentialNext the first, so the translators keep
// both keys' tokens).
func (h *keyHealth) choose(be *config.RBackend, now time.Time) (*config.RBackend, string) {
	switch {
	case be.Credential == "":
		return be, ""
	case be.CredentialNext == "":
		return be, SlotCredential
	}
	h.mu.Lock()
	useNext := h.failingLocked(be.Name, be.Credential, now) && !h.failingLocked(be.Name, be.CredentialNext, now)
	h.mu.Unlock()
	if !useNext {
		return be, SlotCredential
	}
	c := *be
	c.Credential, c.CredentialNext = be.CredentialNext, be.Credential
	return &c, SlotCredentialNext
}

// refused marks the key be (as sent: choose's result) was refused with as
// failing and reports whether its other key is usable.
func (h *keyHealth) refused(be *config.RBackend, now time.Time) (otherUsable bool) {
	if be.CredentialNext == "" {
		return false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.failing == nil {
		h.failing = map[failingKey]time.Time{}
	}
	for k, until := range h.failing { // a handful of keys: drop the stale
		if !now.Before(until) {
			delete(h.failing, k)
		}
	}
	h.failing[failingKey{be.Name, be.Credential}] = now.Add(CredentialFailingFor)
	return !h.failingLocked(be.Name, be.CredentialNext, now)
}

func (h *keyHealth) failingLocked(backend, key string, now time.Time) bool {
	until, ok := h.failing[failingKey{backend, key}]
	return ok && now.Before(until)
}

// authRefused reports whether a provider's status refuses the key sent.
func authRefused(status int) bool {
	return status == http.StatusUnauthorized || status == http.StatusForbidden
}

// fingerprint names a key in logs without giving any of it away: the first
// eight hex digits of its SHA-256.
func fingerprint(key string) string {
	sum := sha256.Sum256([]byte(key))
	return "sha256:" + hex.EncodeToString(sum[:4])
}

// keyRefused runs on a provider's 401 or 403 to an attempt that sent a key:
// it counts the refusal, marks the key failing when the backend has another
// and reports whether Envoy should retry with that other one.
func (u *upstream) keyRefused() bool {
	be := u.keyBackend
	if u.s.metrics != nil {
		u.s.metrics.CredentialRefused(be.Name, u.keySlot)
	}
	retry := u.s.keys.refused(be, u.s.now())
	if be.CredentialNext == "" {
		u.s.log.Warn("the provider refused the backend's key", "request_id", u.id, "backend", be.Name,
			"slot", u.keySlot, "key", fingerprint(be.Credential), "status", u.status)
		return false
	}
	u.s.log.Warn("the provider refused the backend's key; sending its other key", "request_id", u.id, "backend", be.Name,
		"slot", u.keySlot, "key", fingerprint(be.Credential), "status", u.status,
		"for", CredentialFailingFor, "other_key", fingerprint(be.CredentialNext), "other_usable", retry)
	return retry
}

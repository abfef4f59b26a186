// Package identity holds llmproc's own client API keys: the keys file that
// stores only each key's public id and SHA-256 (never the key), the lookup
// that authenticates a request's key in constant time per key, and the
// create/list/revoke operations behind `llmproc keys`.
//
// A key is "llmp_<id>_<secret>": id is 12 hex digits, public and safe to log;
// secret is 32 random bytes in hex. The file maps the id to the key's hash,
// its tenant (with optional team and user), allowed models, creation time,
// expiry and revocation time.
package identity

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Prefix starts every llmproc client key.
const Prefix = "llmp_"

const (
	idBytes     = 6  // 12 hex digits
	secretBytes = 32 // 256 bits
)

// Key is one entry of the keys file. It never holds the key itself.
type Key struct {
	ID     string `json:"id"`
	SHA256 string `json:"sha256"` // hex SHA-256 of the whole key
	Tenant string `json:"tenant"`
	Team   string `json:"team,omitempty"`
	User   string `json:"user,omitempty"`
	// Models, when set, are the glob patterns over registry names and
	// aliases this key may ask for (on top of its tenant's).
	Models []string `json:"models,omitempty"`
	// APIs, Tools and MaxRequestBytes narrow the tenant's: the client APIs
	// (ClientAPIs), the tool-name globs and the body size this key may use.
	APIs            []string `json:"apis,omitempty"`
	Tools           []string `json:"tools,omitempty"`
	MaxRequestBytes int64    `json:"max_request_bytes,omitempty"`
	// Budget and RateLimit are charged in addition to the tenant's.
	Budget    *Budget    `json:"budget,omitempty"`
	RateLimit *RateLimit `json:"rate_limit,omitempty"`

	Created time.Time  `json:"created"`
	Expires *time.Time `json:"expires,omitempty"`
	Revoked *time.Time `json:"revoked,omitempty"`
}

// file is the keys file's JSON form.
type file struct {
	Keys []Key `json:"keys"`
}

// Results of an authentication, the result label of llmproc_auth_total.
const (
	ResultOK        = "ok"
	ResultMissing   = "missing"   // no credential header
	ResultMalformed = "malformed" // not an llmproc key
	ResultUnknown   = "unknown"   // no such id, or the hash differs
	ResultExpired   = "expired"
	ResultRevoked   = "revoked"
	// ResultForbidden is a known key asking for a model it may not use
	// (counted by the caller, which checks the allow-list).
	ResultForbidden = "forbidden"
)

// Keys is a parsed keys file, immutable once built.
type Keys struct {
	byID map[string]*entry
}

type entry struct {
	Key
	sum [sha256.Size]byte
}

// Load reads and parses a keys file.
func Load(path string) (*Keys, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	k, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

// Parse parses a keys file's bytes; every problem is reported with the
// index of the entry it is in.
func Parse(data []byte) (*Keys, error) {
	f, err := parseFile(data)
	if err != nil {
		return nil, err
	}
	k, errs := build(f.Keys)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return k, nil
}

// build indexes keys by id; an entry with a problem is left out and
// reported, with its index.
func build(keys []Key) (*Keys, []error) {
	k := &Keys{byID: make(map[string]*entry, len(keys))}
	var errs []error
	for i, key := range keys {
		e := &entry{Key: key}
		sum, err := hex.DecodeString(key.SHA256)
		switch {
		case !validID(key.ID):
			errs = append(errs, fmt.Errorf("keys[%d].id: want %d hex digits, got %q", i, 2*idBytes, key.ID))
		case k.byID[key.ID] != nil:
			errs = append(errs, fmt.Errorf("keys[%d].id: duplicate id %q", i, key.ID))
		case err != nil || len(sum) != sha256.Size:
			errs = append(errs, fmt.Errorf("keys[%d].sha256: want %d hex digits", i, 2*sha256.Size))
		case key.Tenant == "":
			errs = append(errs, fmt.Errorf("keys[%d].tenant: is empty", i))
		default:
			if lerrs := checkLimits(fmt.Sprintf("keys[%d]", i), &e.Key); len(lerrs) > 0 {
				errs = append(errs, lerrs...)
				continue
			}
			copy(e.sum[:], sum)
			k.byID[key.ID] = e
		}
	}
	return k, errs
}

func parseFile(data []byte) (file, error) {
	var f file
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return file{}, fmt.Errorf("keys file: %w", err)
	}
	return f, nil
}

func validID(id string) bool {
	if len(id) != 2*idBytes {
		return false
	}
	_, err := hex.DecodeString(id)
	return err == nil && strings.ToLower(id) == id
}

// Split returns a key's public id; ok is false when s is not shaped like an
// llmproc key.
func Split(s string) (id string, ok bool) {
	rest, found := strings.CutPrefix(s, Prefix)
	if !found {
		return "", false
	}
	id, secret, found := strings.Cut(rest, "_")
	if !found || !validID(id) || len(secret) != 2*secretBytes {
		return "", false
	}
	return id, true
}

// Authenticate looks a presented key up: by its id (a map lookup), then a
// constant-time comparison of its SHA-256 with the stored one, then expiry
// and revocation. The returned key is nil unless the result is ResultOK; id
// is the presented key's id whenever it is shaped like one, for logs.
func (k *Keys) Authenticate(presented string, now time.Time) (key *Key, id, result string) {
	if presented == "" {
		return nil, "", ResultMissing
	}
	id, ok := Split(presented)
	if !ok {
		return nil, "", ResultMalformed
	}
	var e *entry
	if k != nil {
		e = k.byID[id]
	}
	sum := sha256.Sum256([]byte(presented))
	if e == nil || subtle.ConstantTimeCompare(sum[:], e.sum[:]) != 1 {
		return nil, id, ResultUnknown
	}
	if st := e.State(now); st != ResultOK {
		return nil, id, st
	}
	return &e.Key, id, ResultOK
}

// State is ResultRevoked, ResultExpired or ResultOK for the key at now.
func (k *Key) State(now time.Time) string {
	switch {
	case k.Revoked != nil && !now.Before(*k.Revoked):
		return ResultRevoked
	case k.Expires != nil && !now.Before(*k.Expires):
		return ResultExpired
	}
	return ResultOK
}

// Has reports whether an entry has this id (k may be nil).
func (k *Keys) Has(id string) bool { return k != nil && k.byID[id] != nil }

// Len is the number of keys in the file.
func (k *Keys) Len() int { return len(k.byID) }

// Generate makes a new key from rnd: the key (shown once) and its id.
func Generate(rnd io.Reader) (key, id string, err error) {
	var b [idBytes + secretBytes]byte
	if _, err := io.ReadFull(rnd, b[:]); err != nil {
		return "", "", fmt.Errorf("generate key: %w", err)
	}
	id = hex.EncodeToString(b[:idBytes])
	return Prefix + id + "_" + hex.EncodeToString(b[idBytes:]), id, nil
}

// Hash is the hex SHA-256 of a key, as the keys file stores it.
func Hash(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// Create adds a new key for the template's tenant, team, user, models and
// expiry to the keys file (creating it), and returns the key: the only time
// it exists outside the client. rnd is crypto/rand.Reader when nil.
func Create(path string, tmpl Key, now time.Time, rnd io.Reader) (key string, created Key, err error) {
	if tmpl.Tenant == "" {
		return "", Key{}, errors.New("tenant: is empty")
	}
	f, err := readFile(path, true)
	if err != nil {
		return "", Key{}, err
	}
	key, tmpl, err = newKey(tmpl, now, rnd)
	if err != nil {
		return "", Key{}, err
	}
	f.Keys = append(f.Keys, tmpl)
	if err := writeFile(path, f); err != nil {
		return "", Key{}, err
	}
	return key, tmpl, nil
}

// newKey generates a key for the template: the key and its entry.
func newKey(tmpl Key, now time.Time, rnd io.Reader) (string, Key, error) {
	check := tmpl
	if err := errors.Join(checkLimits("key", &check)...); err != nil {
		return "", Key{}, err // never written: the file would no longer load
	}
	if rnd == nil {
		rnd = rand.Reader
	}
	key, id, err := Generate(rnd)
	if err != nil {
		return "", Key{}, err
	}
	tmpl.ID, tmpl.SHA256, tmpl.Created, tmpl.Revoked = id, Hash(key), now.UTC(), nil
	return key, tmpl, nil
}

// List returns the keys file's entries in file order.
func List(path string) ([]Key, error) {
	f, err := readFile(path, false)
	return f.Keys, err
}

// Revoke marks the key with this id revoked as of now; requests with it are
// refused once every replica has re-read the file.
func Revoke(path, id string, now time.Time) error {
	_, err := modifyFile(path, id, func(k *Key) error { revoke(k, now); return nil })
	return err
}

// Update changes the access lists and limits of the key with this id (f
// sets them on its record; id, hash, tenant and times stay), validated
// before the file is written; every replica applies them once it has
// re-read the file. It returns the updated record.
func Update(path, id string, f func(*Key)) (Key, error) {
	return modifyFile(path, id, func(k *Key) error { return update(k, f) })
}

// revoke marks k revoked at now; an earlier revocation stands.
func revoke(k *Key, now time.Time) {
	if k.Revoked == nil {
		t := now.UTC()
		k.Revoked = &t
	}
}

// update applies f to k, keeping what identifies the key, and validates the
// result.
func update(k *Key, f func(*Key)) error {
	fixed := *k
	f(k)
	k.ID, k.SHA256, k.Tenant, k.Created, k.Revoked = fixed.ID, fixed.SHA256, fixed.Tenant, fixed.Created, fixed.Revoked
	check := *k
	return errors.Join(checkLimits("key", &check)...)
}

func modifyFile(path, id string, f func(*Key) error) (Key, error) {
	file, err := readFile(path, false)
	if err != nil {
		return Key{}, err
	}
	for i := range file.Keys {
		if file.Keys[i].ID == id {
			if err := f(&file.Keys[i]); err != nil {
				return Key{}, err
			}
			return file.Keys[i], writeFile(path, file)
		}
	}
	return Key{}, fmt.Errorf("%s: no key with id %q", path, id)
}

func readFile(path string, missingOK bool) (file, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) && missingOK {
		return file{Keys: []Key{}}, nil
	}
	if err != nil {
		return file{}, err
	}
	if _, err := Parse(data); err != nil {
		return file{}, fmt.Errorf("%s: %w", path, err)
	}
	return parseFile(data)
}

// writeFile replaces the file atomically (a rename), so a replica polling
// it never reads half a file.
func writeFile(path string, f file) error {
	data, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".keys-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// Credential is the key a client presented: Authorization's Bearer token,
// else x-api-key, else x-goog-api-key; "" when none.
func Credential(authorization, xAPIKey, googAPIKey string) string {
	if scheme, tok, ok := strings.Cut(authorization, " "); ok && strings.EqualFold(scheme, "bearer") {
		return strings.TrimSpace(tok)
	}
	if xAPIKey != "" {
		return xAPIKey
	}
	return googAPIKey
}

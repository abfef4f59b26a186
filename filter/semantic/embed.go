package semantic

import (
	"bytes"
	"container/list"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"github.com/llmproc/llmproc/filter/config"
	"github.com/llmproc/llmproc/filter/translate"
)

// Where an embedding came from (EmbedderOptions.OnEmbed's result); bounded,
// usable as metric labels.
const (
	EmbedLocal  = "local"  // the in-process cache
	EmbedRedis  = "redis"  // the shared cache
	EmbedCalled = "called" // the embeddings pool answered
	EmbedError  = "error"  // no member answered within the timeout: a miss
)

// DefaultEmbedTimeout bounds an embeddings call when the config sets none.
const DefaultEmbedTimeout = 300 * time.Millisecond

// maxEmbedAnswer bounds the embeddings answer read.
const maxEmbedAnswer = 4 << 20

// EmbedderOptions configures an Embedder.
type EmbedderOptions struct {
	Pool *config.RPool
	// PoolOf, when set, gives the pool at each call instead of Pool (the
	// current config's, so a reloaded credential is used).
	PoolOf func() *config.RPool
	// Model is the model named in the request (each member's own model
	// override wins).
	Model string
	// Dims, when positive, asks for vectors of that many numbers.
	Dims int
	// Timeout bounds the whole call, members tried in order within it.
	Timeout time.Duration
	// Translators writes each member's request in its backend's API and
	// reads its answer back in OpenAI's, so any backend kind that serves
	// embeddings works (openai, azure-openai, openai-compatible natively;
	// gemini, vertex, bedrock translated).
	Translators *translate.Set
	Client      *http.Client // nil: a client without proxy
	CacheSize   int          // vectors kept in process (default 4096)
	Shared      *Shared      // nil: no shared cache
	OnEmbed     func(result string)
}

// Embedder turns a text into a unit vector with the embeddings pool, out of
// band: it calls the pool's backends itself over HTTP, with their
// credentials, not through Envoy. Every answer is cached by text (an LRU in
// process, and Redis when Shared is set), so a repeated prompt costs no
// call.
type Embedder struct {
	o    EmbedderOptions
	salt string // pool, model and dims: part of each text's cache key
	mu   sync.Mutex
	lru  list.List // of *vecEntry, most recent first
	byH  map[[32]byte]*list.Element
}

type vecEntry struct {
	h [32]byte
	v []float32
}

// NewEmbedder returns an Embedder for o.
func NewEmbedder(o EmbedderOptions) *Embedder {
	if o.Timeout <= 0 {
		o.Timeout = DefaultEmbedTimeout
	}
	if o.CacheSize <= 0 {
		o.CacheSize = 4096
	}
	if o.Client == nil {
		o.Client = &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 8, IdleConnTimeout: 90 * time.Second}}
	}
	name := ""
	if o.Pool != nil {
		name = o.Pool.Name
	} else if o.PoolOf != nil {
		if p := o.PoolOf(); p != nil {
			name = p.Name
		}
	}
	return &Embedder{o: o, salt: name + "\x00" + o.Model + "\x00" + strconv.Itoa(o.Dims) + "\x00", byH: map[[32]byte]*list.Element{}}
}

func (e *Embedder) hash(text string) [32]byte {
	return sha256.Sum256([]byte(e.salt + text))
}

func (e *Embedder) count(result string) {
	if e.o.OnEmbed != nil {
		e.o.OnEmbed(result)
	}
}

// Embed returns text's embedding as a unit vector. An error means no
// vector within the timeout (the caller treats it as a miss).
func (e *Embedder) Embed(ctx context.Context, text string) ([]float32, error) {
	h := e.hash(text)
	if v, ok := e.cached(h); ok {
		e.count(EmbedLocal)
		return v, nil
	}
	ctx, cancel := context.WithTimeout(ctx, e.o.Timeout)
	defer cancel()
	if e.o.Shared != nil {
		if v, ok, err := e.o.Shared.vector(ctx, h); err == nil && ok {
			e.remember(h, v)
			e.count(EmbedRedis)
			return v, nil
		}
	}
	v, err := e.call(ctx, text)
	if err != nil {
		e.count(EmbedError)
		return nil, err
	}
	Normalize(v)
	e.remember(h, v)
	e.count(EmbedCalled)
	if e.o.Shared != nil {
		_ = e.o.Shared.setVector(ctx, h, v) // best effort: a later miss calls again
	}
	return v, nil
}

func (e *Embedder) cached(h [32]byte) ([]float32, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if el, ok := e.byH[h]; ok {
		e.lru.MoveToFront(el)
		return el.Value.(*vecEntry).v, true
	}
	return nil, false
}

func (e *Embedder) remember(h [32]byte, v []float32) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if el, ok := e.byH[h]; ok {
		e.lru.MoveToFront(el)
		return
	}
	e.byH[h] = e.lru.PushFront(&vecEntry{h: h, v: v})
	for e.lru.Len() > e.o.CacheSize {
		old := e.lru.Remove(e.lru.Back()).(*vecEntry)
		delete(e.byH, old.h)
	}
}

// call asks the pool's members in order until one answers.
func (e *Embedder) call(ctx context.Context, text string) ([]float32, error) {
	var errs []error
	pool := e.o.Pool
	if e.o.PoolOf != nil {
		pool = e.o.PoolOf()
	}
	if pool == nil {
		return nil, errors.New("semantic: the embeddings pool is not in the config")
	}
	for _, m := range pool.Members {
		v, err := e.callMember(ctx, m, text)
		if err == nil {
			return v, nil
		}
		errs = append(errs, fmt.Errorf("backend %s: %w", m.Backend.Name, err))
		if ctx.Err() != nil {
			break
		}
	}
	if len(errs) == 0 {
		return nil, errors.New("semantic: the embeddings pool has no backend")
	}
	return nil, errors.Join(errs...)
}

func (e *Embedder) callMember(ctx context.Context, m *config.RMember, text string) ([]float32, error) {
	be := m.Backend
	model := e.o.Model
	if m.Model != "" {
		model = m.Model
	}
	body, _ := sjson.SetBytes([]byte(`{}`), "model", model)
	body, _ = sjson.SetBytes(body, "input", text)
	if e.o.Dims > 0 {
		body, _ = sjson.SetBytes(body, "dimensions", e.o.Dims)
	}
	tr := &translate.Request{Body: body, Backend: be, ClientModel: e.o.Model, Model: model}
	var up *translate.Upstream
	var conv *translate.EmbeddingsCall
	var err error
	switch {
	case translate.EndpointServed(translate.EndpointEmbeddings, be.Schema):
		up, err = translate.EndpointNative(tr, translate.EndpointEmbeddings)
	case translate.EmbeddingsTranslated(be.Schema) && e.o.Translators != nil:
		up, conv, err = e.o.Translators.Embeddings(tr)
	default:
		err = fmt.Errorf("schema %q serves no embeddings", be.Schema)
	}
	if err != nil {
		return nil, err
	}
	if up.Body != nil {
		body = up.Body
	}
	scheme := "http"
	if be.TLS {
		scheme = "https"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, scheme+"://"+be.Authority()+up.Path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("content-type", "application/json")
	for _, h := range be.SetHeaders {
		req.Header.Set(h[0], h[1])
	}
	for _, h := range up.SetHeaders {
		if h[0] == "host" || h[0] == ":authority" {
			req.Host = h[1]
			continue
		}
		req.Header.Set(h[0], h[1])
	}
	resp, err := e.o.Client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, maxEmbedAnswer))
	if err != nil {
		return nil, err
	}
	if conv != nil {
		a := conv.Response(&translate.Response{Status: resp.StatusCode, ContentType: resp.Header.Get("content-type"),
			Model: model, Header: func(n string) string { return resp.Header.Get(n) }})
		if a.Body != nil {
			if o, pass := a.Body.Chunk(out, true); !pass {
				out = o
			}
		}
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, fmt.Errorf("status %d: %.200s", resp.StatusCode, out)
	}
	return readVector(out)
}

// readVector reads data[0].embedding of an OpenAI embeddings answer: an
// array of numbers, or base64 of little-endian float32s.
func readVector(answer []byte) ([]float32, error) {
	emb := gjson.GetBytes(answer, "data.0.embedding")
	switch {
	case emb.IsArray():
		arr := emb.Array()
		v := make([]float32, len(arr))
		for i, x := range arr {
			if x.Type != gjson.Number {
				return nil, errors.New("semantic: embedding holds a non-number")
			}
			v[i] = float32(x.Float())
		}
		if len(v) == 0 {
			return nil, errors.New("semantic: empty embedding")
		}
		return v, nil
	case emb.Type == gjson.String:
		raw, err := base64.StdEncoding.DecodeString(emb.Str)
		if err != nil || len(raw) == 0 || len(raw)%4 != 0 {
			return nil, errors.New("semantic: bad base64 embedding")
		}
		v := make([]float32, len(raw)/4)
		for i := range v {
			v[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		}
		return v, nil
	}
	return nil, errors.New("semantic: the answer holds no data[0].embedding")
}

package config

import (
	"fmt"
	"time"
)

// Semantic configures the semantic cache tier, used by requests whose
// cache.match (or route's cache.match) is "semantic": the latest user
// turn's embedding, from EmbeddingsPool, is compared with those of stored
// answers to requests that are otherwise the same.
type Semantic struct {
	// EmbeddingsPool names the pool whose backends embed the latest user
	// turn; llmproc calls them itself, not through Envoy.
	EmbeddingsPool string `yaml:"embeddings_pool"`
	// Model is the embedding model to ask for (a member's model override
	// wins); default: the first models[] entry of kind embedding served by
	// the pool.
	Model string `yaml:"model"`
	// Dimensions, when set, asks the model for vectors of that size.
	Dimensions int `yaml:"dimensions"`
	// Threshold is the least cosine similarity between two latest user
	// turns for one's answer to serve the other (0 < t ≤ 1; default 0.9).
	Threshold float64 `yaml:"threshold"`
	// MaxEntries bounds the turns held in process (default 20000: 4 bytes a
	// dimension each, 123 MB at 1536 dimensions);
	// MaxBucketEntries the turns of one bucket — requests equal but for
	// their latest user turn — in process and in Redis (default 1000).
	MaxEntries       int `yaml:"max_entries"`
	MaxBucketEntries int `yaml:"max_bucket_entries"`
	// Timeout bounds the embeddings call; past it the request is a miss
	// (default 300ms).
	Timeout Duration `yaml:"timeout"`
}

// Defaults of the semantic tier.
const (
	DefaultSemanticThreshold  = 0.9
	DefaultSemanticEntries    = 20000
	DefaultSemanticBucket     = 1000
	DefaultSemanticTimeout    = 300 * time.Millisecond
	semanticMaxBucketAllowed  = 100000
	semanticMaxDimensionsSane = 1 << 16
)

func (s *Semantic) applyDefaults() {
	if s == nil {
		return
	}
	if s.Threshold == 0 {
		s.Threshold = DefaultSemanticThreshold
	}
	if s.MaxEntries == 0 {
		s.MaxEntries = DefaultSemanticEntries
	}
	if s.MaxBucketEntries == 0 {
		s.MaxBucketEntries = DefaultSemanticBucket
	}
	if s.Timeout.Duration == 0 {
		s.Timeout.Duration = DefaultSemanticTimeout
	}
}

// usesSemantic reports whether any request may match semantically, and the
// first field that asks for it.
func (c *Config) usesSemantic() (string, bool) {
	if c.Cache.Match == MatchSemantic {
		return "cache.match", true
	}
	for i, r := range c.Routes {
		if r.Cache.Match == MatchSemantic {
			return fmt.Sprintf("routes[%d].cache.match", i), true
		}
	}
	return "", false
}

func (v *validator) validateSemantic(c *Config, pools map[string]bool) {
	s := c.Cache.Semantic
	if s == nil {
		if field, ok := c.usesSemantic(); ok {
			v.add("cache.semantic", "is required: %s is semantic, and the semantic tier needs an embeddings_pool", field)
		}
		return
	}
	const p = "cache.semantic"
	switch {
	case s.EmbeddingsPool == "":
		v.add(p+".embeddings_pool", "is required")
	case !pools[s.EmbeddingsPool]:
		v.add(p+".embeddings_pool", "unknown pool %q", s.EmbeddingsPool)
	case s.Model == "" && semanticModel(c, s.EmbeddingsPool) == "":
		v.add(p+".model", "is required: no models[] entry of kind embedding is served by pool %q", s.EmbeddingsPool)
	}
	if s.Threshold <= 0 || s.Threshold > 1 {
		v.add(p+".threshold", "must be in (0, 1], got %v", s.Threshold)
	}
	if s.MaxEntries < 0 {
		v.add(p+".max_entries", "must not be negative")
	}
	if s.MaxBucketEntries < 0 || s.MaxBucketEntries > semanticMaxBucketAllowed {
		v.add(p+".max_bucket_entries", "must be between 0 and %d, got %d", semanticMaxBucketAllowed, s.MaxBucketEntries)
	}
	if s.Dimensions < 0 || s.Dimensions > semanticMaxDimensionsSane {
		v.add(p+".dimensions", "must be between 0 and %d, got %d", semanticMaxDimensionsSane, s.Dimensions)
	}
	if s.Timeout.Duration < 0 {
		v.add(p+".timeout", "must not be negative")
	}
}

// semanticModel is the first models[] entry of kind embedding that pool
// serves, "" if none.
func semanticModel(c *Config, pool string) string {
	for _, m := range c.Models {
		if m.Kind == KindEmbedding && m.Pool == pool {
			return m.Name
		}
	}
	return ""
}

// RSemantic is cache.semantic compiled: its pool resolved in this Runtime
// (so a reload's credentials are the ones used) and its defaults applied.
type RSemantic struct {
	Pool                         *RPool
	Model                        string
	Dimensions                   int
	Threshold                    float64
	MaxEntries, MaxBucketEntries int
	Timeout                      time.Duration
}

// Semantic returns the semantic tier's settings; ok is false when
// cache.semantic is not set.
func (r *Runtime) Semantic() (s RSemantic, ok bool) {
	if r == nil || r.Source == nil || r.Source.Cache.Semantic == nil {
		return RSemantic{}, false
	}
	c := r.Source.Cache.Semantic
	model := c.Model
	if model == "" {
		model = semanticModel(r.Source, c.EmbeddingsPool)
	}
	return RSemantic{Pool: r.Pools[c.EmbeddingsPool], Model: model, Dimensions: c.Dimensions, Threshold: c.Threshold,
		MaxEntries: c.MaxEntries, MaxBucketEntries: c.MaxBucketEntries, Timeout: c.Timeout.Duration}, true
}

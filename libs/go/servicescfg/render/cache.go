package render

import (
	"hash/maphash"
	"sync"
	"sync/atomic"

	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/diag"
)

// maxCached bounds the texts an Engine keeps parsed, maxSeen the hashes of
// texts it remembers having rendered.
const (
	maxCached = 4096
	maxSeen   = 1 << 16
)

// textCache keeps the parse of texts that are rendered more than once: the
// same manifest text under many paths (one copy per service), and `when` or
// namespaceTemplate values repeated across nodes. A text seen once costs
// only its hash, so a stack of distinct files keeps nothing alive.
//
// Every rendered text is parsed under textName, so a parse serves any name;
// only texts without problems are kept, and problems are always reported
// from a parse under the text's own name.
type textCache struct {
	seed   maphash.Seed
	seen   sync.Map     // maphash of a text -> struct{}
	parsed sync.Map     // text -> *unit
	n      atomic.Int64 // texts in parsed
	nseen  atomic.Int64 // hashes in seen
}

// cached returns the checked unit of text, from the cache when the text was
// rendered before.
func (e *Engine) cached(name, text string) (*unit, diag.List) {
	c := &e.cache
	if u, ok := c.parsed.Load(text); ok {
		return u.(*unit), nil
	}
	u, errs := e.prepare(name, text)
	if len(errs) > 0 || c.n.Load() >= maxCached {
		return u, errs
	}
	h := maphash.String(c.seed, text)
	if _, again := c.seen.Load(h); again {
		if prev, loaded := c.parsed.LoadOrStore(text, u); loaded {
			return prev.(*unit), nil
		}
		c.n.Add(1)
	} else if c.nseen.Load() < maxSeen {
		if _, loaded := c.seen.LoadOrStore(h, struct{}{}); !loaded {
			c.nseen.Add(1)
		}
	}
	return u, nil
}

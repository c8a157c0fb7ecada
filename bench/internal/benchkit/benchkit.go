// Package benchkit holds what the bench programs share.
package benchkit

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"

	"k8s.io/client-go/rest"
)

// Observed is a copy of cfg that shows every request to see before sending
// it (to count them).
func Observed(cfg *rest.Config, see func(*http.Request)) *rest.Config {
	c := rest.CopyConfig(cfg)
	c.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(r *http.Request) (*http.Response, error) {
			see(r)
			return rt.RoundTrip(r)
		})
	})
	return c
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// RandomHex is n random bytes in hex: names of a run's own.
func RandomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Sum adds up the counts of m.
func Sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

package main

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestRoutes(t *testing.T) {
	srv := httptest.NewServer(routes([]product{{ID: "mug", Name: "Mug", Price: 900}}))
	defer srv.Close()
	for path, want := range map[string]string{"/healthz": "ok", "/api/hello": "hello", "/api/products": `"id":"mug"`} {
		res, err := srv.Client().Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(res.Body)
		res.Body.Close()
		if err != nil || !strings.Contains(string(b), want) {
			t.Errorf("GET %s = %q, %v; want %q in it", path, b, err, want)
		}
	}
}

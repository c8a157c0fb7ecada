package main

import "net/http"

// hello answers GET /api/hello.
func hello(w http.ResponseWriter, r *http.Request) {
	w.Write([]byte("hello from catalog\n"))
}

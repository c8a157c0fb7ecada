// Command catalog serves the shop's products: GET /api/products (JSON),
// GET /api/hello (a greeting, handy to see a reload) and GET /healthz.
// The product list is products.json, built into the program.
package main

import (
	_ "embed"
	"encoding/json"
	"log"
	"net/http"
	"os"
)

//go:embed products.json
var productsJSON []byte

type product struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	Price int    `json:"price"`
}

func main() {
	var products []product
	if err := json.Unmarshal(productsJSON, &products); err != nil {
		log.Fatalf("products.json: %v", err)
	}
	addr := os.Getenv("LISTEN_ADDR")
	if addr == "" {
		addr = ":8080"
	}
	log.Printf("catalog: %d products, listening on %s", len(products), addr)
	log.Fatal(http.ListenAndServe(addr, routes(products)))
}

func routes(products []product) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /api/hello", hello)
	mux.HandleFunc("GET /api/products", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(products)
	})
	return mux
}

package main

import (
	"compress/gzip"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// readRefGreedy returns the first n greedy ids of a reference prompt as the
// JSON array eval prints.
func readRefGreedy(t *testing.T, dir, name string, n int) string {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, "result.json.gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		Prompts []struct {
			Name   string `json:"name"`
			Greedy []int  `json:"greedy"`
		} `json:"prompts"`
	}
	if err := json.NewDecoder(zr).Decode(&r); err != nil {
		t.Fatal(err)
	}
	for _, p := range r.Prompts {
		if p.Name == name {
			js, _ := json.Marshal(p.Greedy[:n])
			return string(js)
		}
	}
	t.Fatalf("no prompt %s in %s", name, dir)
	return ""
}

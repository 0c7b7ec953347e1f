package main

import (
	"encoding/json"
	"testing"

	"github.com/phi4mac/phi4mac/internal/testrefs"
)

// readRefGreedy returns the first n greedy ids of a reference prompt as the
// JSON array eval prints.
func readRefGreedy(t *testing.T, dir, name string, n int) string {
	t.Helper()
	for _, p := range testrefs.ReadResult(t, dir).Prompts {
		if p.Name == name {
			js, err := json.Marshal(p.Greedy[:n])
			if err != nil {
				t.Fatal(err)
			}
			return string(js)
		}
	}
	t.Fatalf("no prompt %s in %s", name, dir)
	return ""
}

package tokenizer

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/phi4mac/phi4mac/internal/testrefs"
)

// publicCase is one line of refs/tokenizer/public.jsonl.
type publicCase struct {
	ID     string `json:"id"`
	Cat    string `json:"cat"`
	Text   string `json:"text"`
	CL100K []int  `json:"cl100k"`
	O200K  []int  `json:"o200k"`
}

// chatCase is one line of refs/tokenizer/chat.jsonl.
type chatCase struct {
	Model               string `json:"model"`
	Case                string `json:"case"`
	AddGenerationPrompt *bool  `json:"add_generation_prompt"`
	Messages            []struct {
		Role    string  `json:"role"`
		Content string  `json:"content"`
		Tools   *string `json:"tools"`
	} `json:"messages"`
	Rendered    string `json:"rendered"`
	HF          []int  `json:"hf"`
	TikToken    []int  `json:"tiktoken"`
	OrdinaryIDs []int  `json:"ordinary_ids"`
}

func readJSONL[T any](t testing.TB, path string) []T {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []T
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<24)
	for sc.Scan() {
		var v T
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, v)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func publicCases(t testing.TB) []publicCase {
	cases := readJSONL[publicCase](t, testrefs.Path(t, "tokenizer", "public.jsonl"))
	if len(cases) != 521 {
		t.Fatalf("public.jsonl: %d cases, want 521", len(cases))
	}
	return cases
}

func chatCases(t testing.TB) []chatCase {
	cases := readJSONL[chatCase](t, testrefs.Path(t, "tokenizer", "chat.jsonl"))
	if len(cases) != 25 {
		t.Fatalf("chat.jsonl: %d cases, want 25", len(cases))
	}
	return cases
}

// Loaded tokenizers are cached across tests: the full vocabularies take a
// while to parse.
var (
	loadMu    sync.Mutex
	loadCache = map[string]*Tokenizer{}
)

func mustLoad(t testing.TB, path string) *Tokenizer {
	t.Helper()
	loadMu.Lock()
	defer loadMu.Unlock()
	if tok, ok := loadCache[path]; ok {
		return tok
	}
	tok, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	loadCache[path] = tok
	return tok
}

// linkFiles makes a folder in a temp dir holding symlinks to the named files
// of src, to load one source without the others beside it.
func linkFiles(t testing.TB, src string, names ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, n := range names {
		if err := os.Symlink(filepath.Join(src, n), filepath.Join(dir, n)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func checkIDs(t *testing.T, name string, got, want []int) {
	t.Helper()
	if want == nil {
		want = []int{}
	}
	if got == nil {
		got = []int{}
	}
	if !slices.Equal(got, want) {
		t.Errorf("%s:\n got %v\nwant %v", name, got, want)
	}
}

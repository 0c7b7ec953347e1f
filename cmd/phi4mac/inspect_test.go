package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/phi4mac/phi4mac/internal/testrefs"
)

// TestInfo checks that info describes the demo model's shape and sizes.
func TestInfo(t *testing.T) {
	got := runCmd(t, newInfoCmd, "--ctx", "256")
	for _, want := range []string{"llama: hidden 64, 5 layers", "KV cache ", "at 256 tokens (f16)", "tokenizer    512 tokens", "MiB available: fits"} {
		if !strings.Contains(got, want) {
			t.Errorf("info output lacks %q:\n%s", want, got)
		}
	}
}

func TestFitVerdict(t *testing.T) {
	tests := []struct {
		need, avail int64
		want        string
	}{
		{1 << 30, 2 << 30, "fits"},
		{2 << 30, 2 << 30, "fits"},
		{3 << 30, 2 << 30, "does NOT fit"},
	}
	for _, tt := range tests {
		if got := fitVerdict(tt.need, tt.avail); !strings.HasPrefix(got, tt.want) {
			t.Errorf("fitVerdict(%d, %d) = %q, want %q…", tt.need, tt.avail, got, tt.want)
		}
	}
}

// TestBenchJSON runs a short benchmark of micro and checks the JSON report.
func TestBenchJSON(t *testing.T) {
	model := filepath.Join(testrefs.Dir(t), "models/micro/phi3-random-micro-Q8_0.gguf")
	got := runCmd(t, newBenchCmd, "--model", model, "-p", "16", "-n", "4", "--json", "--threads", "1")
	var r struct {
		Prompt        int     `json:"prompt_tokens"`
		Gen           int     `json:"gen_tokens"`
		PrefillTokS   float64 `json:"prefill_tok_s"`
		DecodeTokS    float64 `json:"decode_tok_s"`
		BytesPerToken int64   `json:"weight_bytes_per_token"`
		DecodeGBs     float64 `json:"decode_effective_gb_s"`
		Quant         string  `json:"quant_mix"`
	}
	if err := json.Unmarshal([]byte(got), &r); err != nil {
		t.Fatalf("bench --json printed %q: %v", got, err)
	}
	if r.Prompt != 16 || r.Gen != 4 || r.PrefillTokS <= 0 || r.DecodeTokS <= 0 || r.BytesPerToken <= 0 || r.DecodeGBs <= 0 || !strings.Contains(r.Quant, "Q8_0") {
		t.Errorf("bench report %+v", r)
	}
}

// TestPerplexityCmd scores a story with stories260K: text the model wrote
// itself is far more likely than the uniform 512-way guess.
func TestPerplexityCmd(t *testing.T) {
	model := filepath.Join(testrefs.Dir(t), "models/stories260K/stories260K.gguf")
	text := filepath.Join(t.TempDir(), "story.txt")
	story := "Once upon a time, there was a little girl named Lily. She loved to play outside in the park."
	if err := os.WriteFile(text, []byte(story), 0o644); err != nil {
		t.Fatal(err)
	}
	got := runCmd(t, newPerplexityCmd, "--model", model, "-f", text, "--ctx", "64", "--threads", "1")
	m := regexp.MustCompile(`perplexity ([0-9.]+)`).FindStringSubmatch(got)
	if m == nil {
		t.Fatalf("perplexity printed %q", got)
	}
	if p, _ := strconv.ParseFloat(m[1], 64); !(p > 1 && p < 20) {
		t.Errorf("perplexity %g of the demo's own story, want in (1, 20)", p)
	}
}

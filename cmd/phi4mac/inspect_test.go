package main

import (
	"encoding/json"
	"math"
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
	got := runCmd(t, newBenchCmd, "--model", model, "-p", "16", "-n", "4", "--json", "--threads", "1", "--roofline-mb", "8")
	var r struct {
		MemoryGBs     float64 `json:"memory_gb_s"`
		RooflineTokS  float64 `json:"roofline_tok_s"`
		OfRoofline    float64 `json:"decode_of_roofline"`
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
	// The roofline is the measured bandwidth over the bytes a step reads.
	if r.MemoryGBs <= 0 || math.Abs(r.RooflineTokS-r.MemoryGBs*1e9/float64(r.BytesPerToken)) > 1e-6*r.RooflineTokS ||
		math.Abs(r.OfRoofline-r.DecodeTokS/r.RooflineTokS) > 1e-9 {
		t.Errorf("roofline %+v", r)
	}
}

// TestBenchRooflineFlag checks that bench refuses a --roofline-mb it
// cannot honour (negative, or past what a byte count holds) before loading
// anything, instead of silently skipping the roofline.
func TestBenchRooflineFlag(t *testing.T) {
	model := filepath.Join(testrefs.Dir(t), "models/micro/phi3-random-micro-Q8_0.gguf")
	for _, mb := range []string{"-1", strconv.Itoa(math.MaxInt >> 19)} {
		cmd := newBenchCmd()
		var out strings.Builder
		cmd.SetOut(&out)
		cmd.SetErr(&out)
		cmd.SetArgs([]string{"--model", model, "-p", "4", "-n", "1", "--threads", "1", "--roofline-mb", mb})
		if err := cmd.Execute(); err == nil || !strings.Contains(err.Error(), "--roofline-mb") {
			t.Errorf("bench --roofline-mb %s: %v, want an error about --roofline-mb\n%s", mb, err, out.String())
		}
	}
}

// TestPerplexityCmd scores a story with stories260K by llama.cpp's method
// (text, then --json) and by --score-all: text the model could have
// written is far more likely than the uniform 512-way guess.
func TestPerplexityCmd(t *testing.T) {
	model := filepath.Join(testrefs.Dir(t), "models/stories260K/stories260K.gguf")
	text := filepath.Join(t.TempDir(), "story.txt")
	story := "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. " +
		"One day, she saw a big red ball. She wanted to play with it. Lily ran to the ball and kicked it. " +
		"The ball went up high in the sky. Lily was very happy."
	if err := os.WriteFile(text, []byte(story), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"--model", model, "-f", text, "--ctx", "24", "--threads", "1"}
	perplexity := func(out string) float64 {
		t.Helper()
		m := regexp.MustCompile(`perplexity ([0-9.]+) \+/- [0-9.]+`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("perplexity printed %q", out)
		}
		p, _ := strconv.ParseFloat(m[1], 64)
		return p
	}

	got := runCmd(t, newPerplexityCmd, args...)
	if !strings.Contains(got, "method llama.cpp: ") || !strings.Contains(got, "chunks of 24 tokens, second half scored (tokens 13-23 of each), BOS at chunk start: true") {
		t.Errorf("perplexity does not describe llama.cpp's method:\n%s", got)
	}
	p := perplexity(got)
	if !(p > 1 && p < 20) {
		t.Errorf("perplexity %g of a children's story, want in (1, 20)", p)
	}

	var r struct {
		Method     string  `json:"method"`
		Ctx        int     `json:"ctx"`
		First      int     `json:"first"`
		BOS        bool    `json:"bos"`
		Tokens     int     `json:"tokens"`
		Chunks     int     `json:"chunks"`
		Unscored   int     `json:"unscored_tokens"`
		NLL        float64 `json:"nll"`
		Perplexity float64 `json:"perplexity"`
		Err        float64 `json:"perplexity_err"`
	}
	js := runCmd(t, newPerplexityCmd, append(args, "--json")...)
	if err := json.Unmarshal([]byte(js), &r); err != nil {
		t.Fatalf("perplexity --json printed %q: %v", js, err)
	}
	if r.Method != "llama.cpp" || r.Ctx != 24 || r.First != 12 || !r.BOS || r.Chunks < 2 || r.Tokens != r.Chunks*11 ||
		r.Unscored < 0 || r.Unscored >= 24 || r.Err <= 0 || math.Abs(r.Perplexity-math.Exp(r.NLL)) > 1e-9*r.Perplexity ||
		math.Abs(r.Perplexity-p) > 1e-4 {
		t.Errorf("perplexity --json: %+v (text output: perplexity %g)", r, p)
	}

	all := runCmd(t, newPerplexityCmd, append(args, "--score-all")...)
	if !strings.Contains(all, "method all: ") {
		t.Errorf("--score-all does not name its method:\n%s", all)
	}
	if q := perplexity(all); !(q > 1 && q < 20) || q == p {
		t.Errorf("--score-all perplexity %g (llama.cpp's method: %g)", q, p)
	}
}

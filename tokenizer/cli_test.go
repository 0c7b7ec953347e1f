package tokenizer

import (
	"bytes"
	"strings"
	"testing"

	"github.com/phi4mac/phi4mac/internal/testrefs"
)

func TestWriteIDsAndText(t *testing.T) {
	tok := mustLoad(t, testrefs.Path(t, "models", "tiny", "hf", "tokenizer.json"))
	tests := []struct {
		name    string
		in      string
		opts    EncodeOptions
		jsonl   bool
		want    string
		wantErr string
	}{
		{name: "plain", in: "Hello world", want: "[9906,1917]\n"},
		{name: "plain empty", in: "", want: "[]\n"},
		{name: "plain special as text", in: "<|im_end|>", want: "[27,91,318,6345,91,29]\n"},
		{name: "plain special", in: "<|im_end|>", opts: EncodeOptions{AllowSpecial: true}, want: "[100265]\n"},
		{name: "jsonl", in: "\"Hello world\"\n\n\"\"\n\"a\\nb\"", jsonl: true, want: "[9906,1917]\n[]\n[64,198,65]\n"},
		{name: "jsonl bad line", in: "\"ok\"\nnot json\n", jsonl: true, wantErr: "line 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			err := WriteIDs(tok, strings.NewReader(tt.in), &out, tt.opts, tt.jsonl)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if out.String() != tt.want {
				t.Fatalf("got %q, want %q", out.String(), tt.want)
			}
		})
	}
	// Many JSONL lines stay in order across EncodeBatch batches.
	var in, want strings.Builder
	for i := 0; i < 3*cliBatch+7; i++ {
		in.WriteString("\"Hello world\"\n")
		want.WriteString("[9906,1917]\n")
	}
	var out bytes.Buffer
	if err := WriteIDs(tok, strings.NewReader(in.String()), &out, EncodeOptions{}, true); err != nil || out.String() != want.String() {
		t.Fatalf("batched jsonl: err %v, %d bytes", err, out.Len())
	}

	detok := []struct {
		name, in string
		jsonl    bool
		want     string
		wantErr  string
	}{
		{name: "plain", in: "[9906, 1917]", want: "Hello world"},
		{name: "plain special", in: "[100264,882]\n", want: "<|im_start|>user"},
		{name: "jsonl", in: "[9906,1917]\n\n[]\n[64,198,65]\n", jsonl: true, want: "\"Hello world\"\n\"\"\n\"a\\nb\"\n"},
		{name: "out of range", in: "[100352]", wantErr: "outside the vocabulary"},
		{name: "negative", in: "[1,2]\n[-1]", jsonl: true, wantErr: "line 2"},
		{name: "not ids", in: "\"text\"", wantErr: "JSON array"},
	}
	for _, tt := range detok {
		t.Run("detokenize "+tt.name, func(t *testing.T) {
			var out bytes.Buffer
			err := WriteText(tok, strings.NewReader(tt.in), &out, tt.jsonl)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if out.String() != tt.want {
				t.Fatalf("got %q, want %q", out.String(), tt.want)
			}
		})
	}
}

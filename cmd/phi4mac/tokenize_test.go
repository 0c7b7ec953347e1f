package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/phi4mac/phi4mac/internal/testrefs"
)

func runTokenCmd(t *testing.T, cmd *cobra.Command, stdin string, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	cmd.SetArgs(args)
	cmd.SetIn(strings.NewReader(stdin))
	cmd.SetOut(&out)
	cmd.SetErr(&bytes.Buffer{})
	err := cmd.Execute()
	return out.String(), err
}

// TestTokenizeCommands runs tokenize and detokenize on each kind of PATH.
func TestTokenizeCommands(t *testing.T) {
	for _, model := range []string{
		testrefs.Path(t, "models", "tiny", "hf"),
		testrefs.Path(t, "models", "tiny", "hf", "tokenizer.json"),
		testrefs.Path(t, "models", "tiny", "phi3-random-tiny-Q4_K_M.gguf"),
	} {
		out, err := runTokenCmd(t, newTokenizeCmd(), "<|im_start|>user<|im_sep|>Hello world", "--model", model, "--special")
		if err != nil || out != "[100264,882,100266,9906,1917]\n" {
			t.Fatalf("tokenize --special %s: %q, %v", model, out, err)
		}
		out, err = runTokenCmd(t, newTokenizeCmd(), "\"Hello world\"\n\"<|im_end|>\"\n", "--model", model, "--jsonl")
		if err != nil || out != "[9906,1917]\n[27,91,318,6345,91,29]\n" {
			t.Fatalf("tokenize --jsonl %s: %q, %v", model, out, err)
		}
		out, err = runTokenCmd(t, newDetokenizeCmd(), "[9906,1917]", "--model", model)
		if err != nil || out != "Hello world" {
			t.Fatalf("detokenize %s: %q, %v", model, out, err)
		}
		out, err = runTokenCmd(t, newDetokenizeCmd(), "[9906]\n[1917]\n", "--model", model, "--jsonl")
		if err != nil || out != "\"Hello\"\n\" world\"\n" {
			t.Fatalf("detokenize --jsonl %s: %q, %v", model, out, err)
		}
	}
	if _, err := runTokenCmd(t, newTokenizeCmd(), "x"); err == nil {
		t.Error("tokenize without --model succeeded")
	}
	if _, err := runTokenCmd(t, newTokenizeCmd(), "x", "--model", t.TempDir()); err == nil {
		t.Error("tokenize with an empty folder succeeded")
	}
}

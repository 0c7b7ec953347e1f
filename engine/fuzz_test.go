package engine

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzParseHFConfig feeds arbitrary bytes to the config.json parser: it must
// return a valid Config or an error, never panic.
func FuzzParseHFConfig(f *testing.F) {
	for _, m := range []string{"micro", "micromini", "tiny"} {
		if data, err := os.ReadFile(filepath.Join("..", "..", "shared", "refs", "models", m, "hf", "config.json")); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte(`{"architectures":["LlamaForCausalLM"],"hidden_size":8,"num_hidden_layers":1,"num_attention_heads":2,"intermediate_size":4,"vocab_size":3,"max_position_embeddings":4}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := parseHFConfig(data)
		if err != nil {
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("parseHFConfig returned an invalid config: %v", err)
		}
		_ = c.Rope(c.MaxContext)
		_ = c.String()
	})
}

package engine_test

import (
	"bytes"
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/phi4mac/phi4mac/engine"
	"github.com/phi4mac/phi4mac/engine/cpu"
	"github.com/phi4mac/phi4mac/engine/weights"
	"github.com/phi4mac/phi4mac/internal/testrefs"
)

func TestLongRopeFactorChoice(t *testing.T) {
	cfg, err := engine.ReadHFConfig(filepath.Join(testrefs.Dir(t), "models/micromini/hf"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.RotaryDim != 48 || cfg.HeadDim != 64 || !cfg.TiedEmbeddings || !cfg.LongRoPE() {
		t.Fatalf("micromini config: %s", cfg.String())
	}
	if want := math.Sqrt(1.5); math.Abs(cfg.RopeAttnFactor-want) > 1e-12 {
		t.Errorf("attention factor %g, want %g", cfg.RopeAttnFactor, want)
	}
	for _, c := range []struct {
		ctx  int
		long bool
	}{{1, false}, {256, false}, {257, true}, {4096, true}} {
		if got := cfg.LongFactors(c.ctx); got != c.long {
			t.Errorf("ctx %d: long factors %v, want %v", c.ctx, got, c.long)
		}
		r := cfg.Rope(c.ctx)
		f := cfg.RopeShort
		if c.long {
			f = cfg.RopeLong
		}
		// Pair 3: 1/(factor · 10000^(6/48)).
		if want := 1 / (f[3] * math.Pow(10000, 6.0/48)); math.Abs(r.InvFreq[3]-want) > 1e-15 {
			t.Errorf("ctx %d: inv_freq[3] %g, want %g", c.ctx, r.InvFreq[3], want)
		}
	}
}

func TestHFConfigErrors(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct{ json, want string }{
		{`{"architectures":["GPT2LMHeadModel"]}`, "GPT2LMHeadModel"},
		{`{"architectures":["Phi3ForCausalLM"],"hidden_size":64,"num_hidden_layers":2,"num_attention_heads":3,"num_key_value_heads":2,"intermediate_size":8,"vocab_size":10,"max_position_embeddings":16}`, "not a multiple"},
		{`{"architectures":["Phi3ForCausalLM"],"hidden_act":"gelu"}`, "gelu"},
		{`{"architectures":["Phi3ForCausalLM"],"hidden_size":100,"num_hidden_layers":2,"num_attention_heads":6,"intermediate_size":8,"vocab_size":10,"max_position_embeddings":16}`, "not a multiple of 6 heads"},
		{`{"architectures":["Phi3ForCausalLM"],"hidden_size":0,"num_hidden_layers":2,"num_attention_heads":4,"intermediate_size":8,"vocab_size":10,"max_position_embeddings":16}`, "must all be positive"},
		{`{"architectures":["Phi3ForCausalLM"],"hidden_size":64,"num_hidden_layers":-2,"num_attention_heads":4,"intermediate_size":8,"vocab_size":10,"max_position_embeddings":16}`, "must all be positive"},
		{`{"architectures":["Phi3ForCausalLM"],"hidden_size":64,"num_hidden_layers":2,"num_attention_heads":4,"intermediate_size":8,"vocab_size":1000000000,"max_position_embeddings":16}`, "implausibly large"},
		{`{"architectures":["Phi3ForCausalLM"],"hidden_size":64,"num_hidden_layers":2,"num_attention_heads":4,"intermediate_size":8,"vocab_size":10,"max_position_embeddings":16,"rms_norm_eps":-1}`, "epsilon"},
		{`not json`, "parse config.json"},
	} {
		p := filepath.Join(dir, "config.json")
		if err := writeFile(p, c.json); err != nil {
			t.Fatal(err)
		}
		_, err := engine.ReadHFConfig(p)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one mentioning %q", c.json, err, c.want)
		}
	}
}

// TestShapeMismatch rewrites micro's GGUF with a feed-forward size that its
// tensors do not have: the error must name the tensor and both shapes.
func TestShapeMismatch(t *testing.T) {
	src := filepath.Join(testrefs.Dir(t), "models/micro/phi3-random-micro-F32.gguf")
	for _, c := range []struct {
		key  string
		val  weights.Value
		want []string
	}{
		{"phi3.feed_forward_length", weights.Uint32Value(200), []string{"blk.0.ffn_down.weight", "[64 192]", "[64 200]"}},
		{"general.architecture", weights.StringValue("gpt2"), []string{"gpt2", "unsupported"}},
		{"phi3.block_count", weights.Uint32Value(3), []string{"blk.2.", "missing"}},
	} {
		g, err := weights.OpenGGUF(src)
		if err != nil {
			t.Fatal(err)
		}
		var meta []weights.KV
		for _, k := range g.Keys() {
			v, _ := g.Meta(k)
			if k == c.key {
				v = c.val
			}
			meta = append(meta, weights.KV{Key: k, Value: v})
		}
		var buf bytes.Buffer
		if err := weights.WriteGGUF(&buf, meta, g.Tensors()); err != nil {
			t.Fatal(err)
		}
		g.Close()
		bad := filepath.Join(t.TempDir(), "bad.gguf")
		if err := writeFile(bad, buf.String()); err != nil {
			t.Fatal(err)
		}
		_, err = engine.Load(context.Background(), bad, engine.Options{Backend: cpu.New(cpu.Options{Threads: 1}), NoTokenizer: true})
		if err == nil {
			t.Fatalf("%s changed: loaded", c.key)
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s changed: error %q does not mention %q", c.key, err, w)
			}
		}
		if c.key == "general.architecture" && !errors.Is(err, engine.ErrUnsupported) {
			t.Errorf("unknown architecture: %v is not ErrUnsupported", err)
		}
	}
}

func writeFile(path, data string) error {
	return os.WriteFile(path, []byte(data), 0o644)
}

// TestWrongFactorSetFails guards the LongRoPE tests against passing by
// accident: the short factors (ctx 256) must not match the long-factor
// (ctx 4096) reference beyond position 0.
func TestWrongFactorSetFails(t *testing.T) {
	refs := testrefs.Dir(t)
	m := loadModel(t, filepath.Join(refs, "models/micromini/phi4mini-random-micromini-F32.gguf"), 2)
	want := testrefs.ReadF32(t, filepath.Join(refs, "logits/micromini/f32-kvf32-ctx4096/chat.last.f32"))
	for _, c := range []struct {
		ctx   int
		match bool
	}{{4096, true}, {256, false}} {
		s, err := m.NewSession(engine.SessionOptions{Ctx: c.ctx, KV: engine.KVF32})
		if err != nil {
			t.Fatal(err)
		}
		var ids []int
		for _, p := range testrefs.ReadResult(t, filepath.Join(refs, "logits/micromini/f32-kvf32-ctx4096")).Prompts {
			if p.Name == "chat" {
				ids = p.IDs
			}
		}
		got, err := s.Forward(context.Background(), ids, false)
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
		if d := maxDiff(got, want); (d < 5e-4) != c.match || (!c.match && d < 1) {
			t.Errorf("ctx %d vs the long-factor reference: max |Δ| %.3g", c.ctx, d)
		}
	}
}

// TestHFMissingTensor hides one tensor of micro's Hugging Face folder (its
// header entry renamed): the error names the tensor as the folder names it.
func TestHFMissingTensor(t *testing.T) {
	src := filepath.Join(testrefs.Dir(t), "models/micro/hf")
	dir := t.TempDir()
	for _, f := range []string{"config.json", "model.safetensors"} {
		data, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			t.Fatal(err)
		}
		if f == "model.safetensors" {
			for _, c := range []struct{ old, new string }{
				{"model.layers.1.input_layernorm.weight", "model.layers.1.input_layernorm.weigxx"},
				{"model.layers.0.self_attn.qkv_proj.weight", "model.layers.0.self_attn.qkv_proj.weigxx"},
			} {
				if !bytes.Contains(data, []byte(c.old)) {
					t.Fatalf("%s not in %s", c.old, f)
				}
				data = bytes.Replace(data, []byte(c.old), []byte(c.new), 1)
			}
		}
		if err := os.WriteFile(filepath.Join(dir, f), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	_, err := engine.Load(context.Background(), dir, engine.Options{Backend: cpu.New(cpu.Options{Threads: 1}), NoTokenizer: true})
	if err == nil || !strings.Contains(err.Error(), "model.layers.0.self_attn.qkv_proj.weight missing") {
		t.Errorf("folder without layer 0's qkv_proj: %v", err)
	}
}

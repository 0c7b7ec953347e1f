package tokenizer

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/phi4mac/phi4mac/engine/weights"
	"github.com/phi4mac/phi4mac/internal/testrefs"
)

// fuzzTokenizers loads the tokenizers the encoding fuzz target exercises:
// cl100k and o200k (full vocabularies) and SentencePiece stories260K.
func fuzzTokenizers(f *testing.F) []*Tokenizer {
	return []*Tokenizer{
		mustLoad(f, testrefs.Path(f, "models", "tiny", "hf", "tokenizer.json")),
		mustLoad(f, testrefs.Path(f, "tokenizer", "phi4mini")),
		mustLoad(f, testrefs.Path(f, "models", "stories260K", "stories260K.gguf")),
	}
}

// FuzzEncode: for any byte string, encoding never panics, pieces tile the
// input, Decode(Encode(s)) == s with and without AllowSpecial, and the
// stream decoder emits valid UTF-8 that adds up to the decoded text.
func FuzzEncode(f *testing.F) {
	for _, c := range publicCases(f) {
		f.Add(c.Text)
	}
	for _, c := range chatCases(f) {
		f.Add(c.Rendered)
	}
	toks := fuzzTokenizers(f)
	f.Fuzz(func(t *testing.T, s string) {
		for _, p := range []Pattern{PatternCL100K, PatternO200K} {
			end := 0
			p.split(s, func(piece string) {
				if piece == "" || !strings.HasPrefix(s[end:], piece) {
					t.Fatalf("%v: bad piece %q at %d", p, piece, end)
				}
				end += len(piece)
			})
			if end != len(s) {
				t.Fatalf("%v: pieces cover %d of %d bytes", p, end, len(s))
			}
		}
		for _, tok := range toks {
			for _, special := range []bool{false, true} {
				ids := tok.Encode(s, EncodeOptions{AllowSpecial: special})
				got := tok.Decode(ids)
				if special && tok.added != nil && len(tok.added.tokens) > 0 && strings.Contains(s, "<") {
					// lstrip/rstrip may drop white space next to added tokens.
					continue
				}
				if tok.kind == kindSPM && strings.Contains(s, spmSpace) {
					// SentencePiece writes spaces as U+2581, so a literal
					// U+2581 decodes as a space (as in llama.cpp).
					continue
				}
				if got != s {
					t.Fatalf("%v special=%v: %q → %v → %q", tok.Pattern(), special, s, ids, got)
				}
				sd := tok.NewStreamDecoder()
				var sb strings.Builder
				for _, id := range ids {
					piece := sd.Push(id)
					sb.WriteString(piece)
				}
				sb.WriteString(sd.Flush())
				if want := toValid([]byte(got)); sb.String() != want {
					t.Fatalf("%v: stream %q, want %q", tok.Pattern(), sb.String(), want)
				}
			}
		}
	})
}

// FuzzLoadTokenizerJSON: corrupt tokenizer.json contents give an error or a
// working tokenizer, never a panic.
func FuzzLoadTokenizerJSON(f *testing.F) {
	for _, m := range []string{"micro", "micromini"} {
		data, err := os.ReadFile(testrefs.Path(f, "models", m, "hf", "tokenizer.json"))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(`{"model":{"type":"BPE","vocab":{"a":0},"merges":[]},"pre_tokenizer":null}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := parseTokenizerJSON(data)
		if err != nil {
			return
		}
		tok, err := build(s)
		if err != nil {
			return
		}
		text := "Hello <|im_start|> wörld 123 \xff"
		ids := tok.Encode(text, EncodeOptions{})
		if got := tok.Decode(ids); got != text {
			t.Fatalf("loaded tokenizer does not round-trip: %q", got)
		}
		tok.Encode(text, EncodeOptions{AllowSpecial: true, AddBOS: true})
	})
}

// FuzzLoadVocabMerges: corrupt vocab.json / merges.txt give an error or a
// working tokenizer, never a panic.
func FuzzLoadVocabMerges(f *testing.F) {
	for _, m := range []string{"micro", "micromini"} {
		v, err := os.ReadFile(testrefs.Path(f, "models", m, "hf", "vocab.json"))
		if err != nil {
			f.Fatal(err)
		}
		mg, err := os.ReadFile(testrefs.Path(f, "models", m, "hf", "merges.txt"))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(v, mg)
	}
	f.Fuzz(func(t *testing.T, vocab, merges []byte) {
		s, err := parseVocabMerges(vocab, merges)
		if err != nil {
			return
		}
		s.pattern = PatternO200K
		tok, err := build(s)
		if err != nil {
			return
		}
		text := "Hello wörld 123 \xff"
		if got := tok.Decode(tok.Encode(text, EncodeOptions{})); got != text {
			t.Fatalf("loaded tokenizer does not round-trip: %q", got)
		}
	})
}

// tokenizerGGUF writes a tensor-less GGUF holding only the tokenizer.*
// metadata of the GGUF at path: a small fuzz seed.
func tokenizerGGUF(tb testing.TB, path string) []byte {
	g, err := weights.OpenGGUF(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer g.Close()
	var meta []weights.KV
	for _, k := range g.Keys() {
		if strings.HasPrefix(k, "tokenizer.") {
			v, _ := g.Meta(k)
			meta = append(meta, weights.KV{Key: k, Value: v})
		}
	}
	var buf bytes.Buffer
	if err := weights.WriteGGUF(&buf, meta, nil); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// FuzzLoadGGUF: corrupt GGUF tokenizer metadata gives an error or a working
// tokenizer, never a panic.
func FuzzLoadGGUF(f *testing.F) {
	seeds := [][]byte{
		tokenizerGGUF(f, testrefs.Path(f, "models", "micro", "phi3-random-micro-F32.gguf")),
		tokenizerGGUF(f, testrefs.Path(f, "models", "micromini", "phi4mini-random-micromini-F32.gguf")),
		tokenizerGGUF(f, testrefs.Path(f, "models", "stories260K", "stories260K.gguf")),
	}
	for _, s := range seeds {
		if _, err := LoadGGUFBytes(s); err != nil {
			f.Fatalf("seed does not load: %v", err)
		}
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		tok, err := LoadGGUFBytes(data)
		if err != nil {
			return
		}
		text := "Hello <|im_start|> wörld 123 \xff"
		tok.Decode(tok.Encode(text, EncodeOptions{AllowSpecial: true, AddBOS: true}))
		if _, err := tok.ApplyChatTemplate([]Message{{Role: "user", Content: "hi"}}, true); err != nil && tok.HasChatTemplate() {
			t.Fatal(err)
		}
	})
}

// TestLoadErrors: malformed files give clear errors.
func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := dir + "/" + name
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name, file, content, want string
	}{
		{"not json", "a.json", "{", "unexpected end"},
		{"wordpiece", "b.json", `{"model":{"type":"WordPiece"}}`, "not supported"},
		{"unknown regex", "c.json", `{"pre_tokenizer":{"type":"Split","pattern":{"Regex":"\\w+"},"behavior":"Isolated"},"model":{"type":"BPE","vocab":{},"merges":[]}}`, "unknown split pattern"},
		{"gpt2 regex", "d.json", `{"pre_tokenizer":{"type":"ByteLevel","use_regex":true},"model":{"type":"BPE","vocab":{},"merges":[]}}`, "GPT-2"},
		{"missing bytes", "e.json", `{"pre_tokenizer":{"type":"Split","pattern":{"Regex":` + jsonString(cl100kRegex) + `},"behavior":"Isolated"},"model":{"type":"BPE","vocab":{"a":0},"merges":[]}}`, "no token for byte"},
		{"bad merge", "f.json", `{"pre_tokenizer":{"type":"Split","pattern":{"Regex":` + jsonString(cl100kRegex) + `},"behavior":"Isolated"},"model":{"type":"BPE","vocab":{"a":0},"merges":["a b"]}}`, "unknown token"},
		{"bad id", "g.json", `{"pre_tokenizer":{"type":"Split","pattern":{"Regex":` + jsonString(cl100kRegex) + `},"behavior":"Isolated"},"model":{"type":"BPE","vocab":{"a":-4},"merges":[]}}`, "out of range"},
		{"gguf garbage", "h.gguf", "GGUF\x03\x00\x00\x00", "gguf"},
		{"prefix space", "i.json", `{"pre_tokenizer":{"type":"ByteLevel","add_prefix_space":true},"model":{"type":"BPE","vocab":{},"merges":[]}}`, "add_prefix_space"},
		{"single word", "j.json", `{"added_tokens":[{"id":0,"content":"x","single_word":true}],"pre_tokenizer":{"type":"Split","pattern":{"Regex":` + jsonString(cl100kRegex) + `},"behavior":"Isolated"},"model":{"type":"BPE","vocab":{},"merges":[]}}`, "single_word"},
	}
	for _, tt := range tests {
		_, err := Load(write(tt.file, tt.content))
		if err == nil || !strings.Contains(strings.ToLower(err.Error()), strings.ToLower(tt.want)) {
			t.Errorf("%s: err = %v, want it to mention %q", tt.name, err, tt.want)
		}
	}
	if _, err := Load(dir); err == nil {
		t.Error("folder without a tokenizer loaded")
	}
	// A GGUF without tokenizer metadata.
	var buf bytes.Buffer
	if err := weights.WriteGGUF(&buf, []weights.KV{{Key: "general.architecture", Value: weights.StringValue("phi3")}}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadGGUFBytes(buf.Bytes()); err == nil || !strings.Contains(err.Error(), "no tokenizer") {
		t.Errorf("GGUF without tokenizer: %v", err)
	}
}

func jsonString(s string) string {
	var sb strings.Builder
	sb.WriteByte('"')
	for _, r := range s {
		switch r {
		case '\\', '"':
			sb.WriteByte('\\')
			sb.WriteRune(r)
		default:
			sb.WriteRune(r)
		}
	}
	sb.WriteByte('"')
	return sb.String()
}

// TestLoadConfigErrors: malformed HF config files beside vocab.json and
// merges.txt give errors naming the file, not a tokenizer built from a
// misread value.
func TestLoadConfigErrors(t *testing.T) {
	hf := testrefs.Path(t, "models", "micro", "hf")
	tests := []struct {
		name, file, content, want string
	}{
		{"id with trailing text", "tokenizer_config.json", `{"added_tokens_decoder":{"929x":{"content":"<|endoftext|>","special":true}}}`, `key "929x"`},
		{"not json", "tokenizer_config.json", `{`, "tokenizer_config.json"},
		{"bad added_tokens.json", "added_tokens.json", `[1]`, "added_tokens.json"},
		{"bad eos ids", "generation_config.json", `{"eos_token_id":"x"}`, "eos_token_id"},
		{"bad special_tokens_map.json", "special_tokens_map.json", `{`, "special_tokens_map.json"},
	}
	// A config file that is there but cannot be read is an error too.
	for _, name := range []string{"tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja", "generation_config.json", "added_tokens.json"} {
		files := []string{"vocab.json", "merges.txt"}
		if name != "chat_template.jinja" { // read only without a chat_template in tokenizer_config.json
			files = append(files, "tokenizer_config.json")
		}
		dir := linkFiles(t, hf, files...)
		os.Remove(filepath.Join(dir, name))
		if err := os.Mkdir(filepath.Join(dir, name), 0o755); err != nil {
			t.Fatal(err)
		}
		if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s is a folder: err = %v", name, err)
		}
	}
	for _, tt := range tests {
		dir := linkFiles(t, hf, "vocab.json", "merges.txt")
		if err := os.WriteFile(dir+"/"+tt.file, []byte(tt.content), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := Load(dir)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want it to mention %q", tt.name, err, tt.want)
		}
	}
}

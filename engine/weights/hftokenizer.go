package weights

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// GGUF token types (llama.cpp's llama_token_type).
const (
	TokenNormal      = 1
	TokenUnknown     = 2
	TokenControl     = 3
	TokenUserDefined = 4
	TokenUnused      = 5
	TokenByte        = 6
)

// TokenizerKVs returns the tokenizer.* metadata entries of g, in file order.
func TokenizerKVs(g *GGUF) []KV {
	var out []KV
	for _, kv := range g.KVs() {
		if strings.HasPrefix(kv.Key, "tokenizer.") {
			out = append(out, kv)
		}
	}
	return out
}

// HFTokenizerKVs converts the byte-level BPE tokenizer of a Hugging Face
// model folder (tokenizer.json, or vocab.json + merges.txt, with
// tokenizer_config.json and config.json) into GGUF tokenizer metadata as
// llama.cpp's convert_hf_to_gguf.py writes it for a GPT-2-style
// vocabulary: model "gpt2", the given pre-tokenizer name (phi-4: "dbrx",
// phi-4-mini: "gpt-4o"), vocabSize tokens (ids without a token become
// "[PADn]", type unused), token types (added tokens that are special or
// look like <|...|> are control tokens), merges, special token ids, the
// add_bos/add_eos flags when the config sets them, and the chat template.
// vocabSize 0 means config.json's vocab_size, or else the number of
// tokens found.
func HFTokenizerKVs(dir string, vocabSize int, pre string) ([]KV, error) {
	kvs, err := hfTokenizerKVs(dir, vocabSize, pre)
	if err != nil {
		return nil, fmt.Errorf("tokenizer %s: %w", dir, err)
	}
	return kvs, nil
}

// maxVocab bounds the vocabulary size a tokenizer folder may declare, so a
// corrupt vocab_size or token id cannot make HFTokenizerKVs allocate
// gigabytes (real vocabularies have up to ~260k tokens).
const maxVocab = 1 << 22

type hfAddedToken struct {
	ID         int    `json:"id"`
	Content    string `json:"content"`
	Special    bool   `json:"special"`
	Normalized bool   `json:"normalized"`
}

func readJSON(path string, v any) (bool, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return false, fmt.Errorf("%s: %w", filepath.Base(path), err)
	}
	return true, nil
}

func hfTokenizerKVs(dir string, vocabSize int, pre string) ([]KV, error) {
	var tj struct {
		AddedTokens []hfAddedToken `json:"added_tokens"`
		Model       struct {
			Type   string          `json:"type"`
			Vocab  map[string]int  `json:"vocab"`
			Merges json.RawMessage `json:"merges"`
		} `json:"model"`
	}
	haveTJ, err := readJSON(filepath.Join(dir, "tokenizer.json"), &tj)
	if err != nil {
		return nil, err
	}
	if haveTJ && tj.Model.Type != "" && tj.Model.Type != "BPE" {
		return nil, fmt.Errorf("tokenizer model %s is not BPE", tj.Model.Type)
	}
	vocab := tj.Model.Vocab
	if vocab == nil {
		if ok, err := readJSON(filepath.Join(dir, "vocab.json"), &vocab); err != nil {
			return nil, err
		} else if !ok {
			return nil, errors.New("neither tokenizer.json nor vocab.json found")
		}
	}
	merges, err := hfMerges(dir, tj.Model.Merges)
	if err != nil {
		return nil, err
	}
	var cfg map[string]any
	if _, err := readJSON(filepath.Join(dir, "tokenizer_config.json"), &cfg); err != nil {
		return nil, err
	}
	added := tj.AddedTokens
	if !haveTJ {
		// Without tokenizer.json, added tokens come from tokenizer_config's
		// added_tokens_decoder (with their flags) and added_tokens.json.
		seen := map[int]bool{}
		if dec, ok := cfg["added_tokens_decoder"].(map[string]any); ok {
			for idText, v := range dec {
				e, _ := v.(map[string]any)
				content, _ := e["content"].(string)
				id, err := strconv.Atoi(idText)
				if err != nil || content == "" || id < 0 {
					return nil, fmt.Errorf("tokenizer_config.json: bad added_tokens_decoder entry %q", idText)
				}
				special, _ := e["special"].(bool)
				added = append(added, hfAddedToken{ID: id, Content: content, Special: special})
				seen[id] = true
			}
		}
		var at map[string]int
		if _, err := readJSON(filepath.Join(dir, "added_tokens.json"), &at); err != nil {
			return nil, err
		}
		for text, id := range at {
			if !seen[id] {
				added = append(added, hfAddedToken{ID: id, Content: text})
			}
		}
		sort.Slice(added, func(i, j int) bool { return added[i].ID < added[j].ID })
	}
	var modelCfg map[string]any
	if _, err := readJSON(filepath.Join(dir, "config.json"), &modelCfg); err != nil {
		return nil, err
	}

	byID := map[int]string{}
	for text, id := range vocab {
		if id < 0 {
			return nil, fmt.Errorf("token %q has negative id %d", text, id)
		}
		byID[id] = text
	}
	addedByID := map[int]hfAddedToken{}
	for _, a := range added {
		byID[a.ID] = a.Content
		addedByID[a.ID] = a
	}
	if f, ok := modelCfg["vocab_size"].(float64); ok && vocabSize == 0 && f > 0 && f < 1<<31 {
		vocabSize = int(f)
	}
	if vocabSize == 0 {
		for id := range byID {
			vocabSize = max(vocabSize, id+1)
		}
	}
	if vocabSize > maxVocab {
		return nil, fmt.Errorf("a vocabulary of %d tokens is beyond the %d phi4mac accepts (is vocab_size in config.json, or a token id, corrupt?)", vocabSize, maxVocab)
	}
	for id := range byID {
		if id >= vocabSize {
			return nil, fmt.Errorf("token id %d is outside the vocabulary size %d", id, vocabSize)
		}
	}
	tokens := make([]string, vocabSize)
	types := make([]int32, vocabSize)
	for i := range tokens {
		text, ok := byID[i]
		switch {
		case !ok:
			tokens[i], types[i] = fmt.Sprintf("[PAD%d]", i), TokenUnused
		case addedByID[i].Content == text && (addedByID[i].Special || looksSpecial(text)):
			tokens[i], types[i] = text, TokenControl
		case addedByID[i].Content == text:
			tokens[i], types[i] = text, TokenUserDefined
		default:
			tokens[i], types[i] = text, TokenNormal
		}
	}

	kvs := []KV{
		{"tokenizer.ggml.model", StringValue("gpt2")},
		{"tokenizer.ggml.pre", StringValue(pre)},
		{"tokenizer.ggml.tokens", StringsValue(tokens)},
		{"tokenizer.ggml.token_type", Int32sValue(types)},
	}
	if len(merges) > 0 {
		kvs = append(kvs, KV{"tokenizer.ggml.merges", StringsValue(merges)})
	}
	idOf := func(content string) (int, bool) {
		for _, a := range added {
			if a.Content == content {
				return a.ID, true
			}
		}
		return 0, false
	}
	specialKeys := []struct{ typ, key string }{
		{"bos", "tokenizer.ggml.bos_token_id"}, {"eos", "tokenizer.ggml.eos_token_id"},
		{"unk", "tokenizer.ggml.unknown_token_id"}, {"sep", "tokenizer.ggml.seperator_token_id"},
		{"pad", "tokenizer.ggml.padding_token_id"}, {"cls", "tokenizer.ggml.cls_token_id"},
		{"mask", "tokenizer.ggml.mask_token_id"},
	}
	found := map[string]bool{}
	for _, s := range specialKeys {
		content := ""
		switch e := cfg[s.typ+"_token"].(type) {
		case string:
			content = e
		case map[string]any:
			content, _ = e["content"].(string)
		}
		if content == "" {
			continue
		}
		if id, ok := idOf(content); ok {
			kvs = append(kvs, KV{s.key, Uint32Value(uint32(id))})
			found[s.typ] = true
		}
	}
	for _, s := range specialKeys { // config.json fills in the rest
		if found[s.typ] {
			continue
		}
		if f, ok := modelCfg[s.typ+"_token_id"].(float64); ok && f >= 0 && f < float64(vocabSize) && f == float64(int(f)) {
			kvs = append(kvs, KV{s.key, Uint32Value(uint32(f))})
		}
	}
	for _, typ := range []string{"bos", "eos"} {
		if b, ok := cfg["add_"+typ+"_token"].(bool); ok {
			kvs = append(kvs, KV{"tokenizer.ggml.add_" + typ + "_token", BoolValue(b)})
		}
	}
	if tmpl, ok := cfg["chat_template"].(string); ok && tmpl != "" {
		kvs = append(kvs, KV{"tokenizer.chat_template", StringValue(tmpl)})
	}
	return kvs, nil
}

// looksSpecial is convert_hf_to_gguf.py's does_token_look_special.
func looksSpecial(t string) bool {
	switch t {
	case "<pad>", "<mask>", "<2mass>", "[@BOS@]":
		return true
	}
	return strings.HasPrefix(t, "<|") && strings.HasSuffix(t, "|>") ||
		strings.HasPrefix(t, "<｜") && strings.HasSuffix(t, "｜>")
}

// hfMerges returns the BPE merges as "a b" strings, from tokenizer.json's
// model.merges (strings or pairs) or else merges.txt.
func hfMerges(dir string, raw json.RawMessage) ([]string, error) {
	if len(raw) > 0 && string(raw) != "null" {
		var asStrings []string
		if err := json.Unmarshal(raw, &asStrings); err == nil {
			return asStrings, nil
		}
		var pairs [][2]string
		if err := json.Unmarshal(raw, &pairs); err != nil {
			return nil, fmt.Errorf("tokenizer.json model.merges: %w", err)
		}
		out := make([]string, len(pairs))
		for i, p := range pairs {
			out[i] = p[0] + " " + p[1]
		}
		return out, nil
	}
	b, err := os.ReadFile(filepath.Join(dir, "merges.txt"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 0 && strings.HasPrefix(lines[0], "#version") {
		lines = lines[1:]
	}
	return lines, nil
}

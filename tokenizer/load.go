package tokenizer

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// maxFileSize bounds the tokenizer files read into memory.
const maxFileSize = 1 << 30

// Load reads a tokenizer from path: a model folder (tokenizer.json, or
// vocab.json + merges.txt with tokenizer_config.json / added_tokens.json),
// a tokenizer.json file, or a .gguf file. Sibling tokenizer_config.json,
// generation_config.json and special_tokens_map.json supply BOS/EOS, stop
// ids and the chat template.
func Load(path string) (*Tokenizer, error) {
	t, err := load(path)
	if err != nil {
		return nil, fmt.Errorf("load tokenizer %s: %w", path, err)
	}
	return t, nil
}

func load(path string) (*Tokenizer, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if fi.IsDir() {
		if exists(filepath.Join(path, "tokenizer.json")) {
			return loadTokenizerJSON(filepath.Join(path, "tokenizer.json"))
		}
		if exists(filepath.Join(path, "vocab.json")) && exists(filepath.Join(path, "merges.txt")) {
			return loadVocabMerges(path)
		}
		ggufs, _ := filepath.Glob(filepath.Join(path, "*.gguf"))
		if len(ggufs) == 1 {
			return loadGGUF(ggufs[0])
		}
		return nil, errors.New("no tokenizer.json, vocab.json+merges.txt or single .gguf file in the folder")
	}
	if strings.EqualFold(filepath.Ext(path), ".gguf") || hasGGUFMagic(path) {
		return loadGGUF(path)
	}
	return loadTokenizerJSON(path)
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func hasGGUFMagic(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	var magic [4]byte
	_, err = f.Read(magic[:])
	return err == nil && string(magic[:]) == "GGUF"
}

func readFile(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if fi.Size() > maxFileSize {
		return nil, fmt.Errorf("%s: %d bytes is too large for a tokenizer file", path, fi.Size())
	}
	return os.ReadFile(path)
}

// hfAddedToken is an entry of tokenizer.json's added_tokens or
// tokenizer_config.json's added_tokens_decoder.
type hfAddedToken struct {
	ID         *int   `json:"id"`
	Content    string `json:"content"`
	SingleWord bool   `json:"single_word"`
	LStrip     bool   `json:"lstrip"`
	RStrip     bool   `json:"rstrip"`
	Special    bool   `json:"special"`
}

type hfTokenizerJSON struct {
	AddedTokens  []hfAddedToken  `json:"added_tokens"`
	Normalizer   json.RawMessage `json:"normalizer"`
	PreTokenizer json.RawMessage `json:"pre_tokenizer"`
	Model        struct {
		Type                    string          `json:"type"`
		Vocab                   json.RawMessage `json:"vocab"`
		Merges                  json.RawMessage `json:"merges"`
		ByteFallback            bool            `json:"byte_fallback"`
		ContinuingSubwordPrefix *string         `json:"continuing_subword_prefix"`
		EndOfWordSuffix         *string         `json:"end_of_word_suffix"`
	} `json:"model"`
}

type hfPreTokenizer struct {
	Type          string           `json:"type"`
	Pretokenizers []hfPreTokenizer `json:"pretokenizers"`
	Pattern       struct {
		Regex  *string `json:"Regex"`
		String *string `json:"String"`
	} `json:"pattern"`
	Behavior       string `json:"behavior"`
	Invert         bool   `json:"invert"`
	UseRegex       bool   `json:"use_regex"`
	AddPrefixSpace bool   `json:"add_prefix_space"`
}

// loadTokenizerJSON reads an HF tokenizer.json and the config files beside it.
func loadTokenizerJSON(path string) (*Tokenizer, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, err
	}
	s, err := parseTokenizerJSON(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Base(path), err)
	}
	if err := readConfigs(s, filepath.Dir(path), false); err != nil {
		return nil, err
	}
	return build(s)
}

// parseTokenizerJSON extracts a spec from tokenizer.json contents.
func parseTokenizerJSON(data []byte) (*spec, error) {
	var tj hfTokenizerJSON
	if err := json.Unmarshal(data, &tj); err != nil {
		return nil, err
	}
	if tj.Model.Type != "BPE" {
		return nil, fmt.Errorf("model type %q is not supported (want BPE)", tj.Model.Type)
	}
	if n := bytes.TrimSpace(tj.Normalizer); len(n) > 0 && string(n) != "null" {
		return nil, errors.New("normalizers are not supported")
	}
	if tj.Model.ByteFallback {
		return nil, errors.New("byte_fallback BPE is not supported")
	}
	if p := tj.Model.ContinuingSubwordPrefix; p != nil && *p != "" {
		return nil, errors.New("continuing_subword_prefix is not supported")
	}
	if p := tj.Model.EndOfWordSuffix; p != nil && *p != "" {
		return nil, errors.New("end_of_word_suffix is not supported")
	}
	s := newSpec()
	s.kind = kindBPE
	pat, err := patternFromPreTokenizer(tj.PreTokenizer)
	if err != nil {
		return nil, err
	}
	s.pattern = pat
	var vocab map[string]int
	if err := json.Unmarshal(tj.Model.Vocab, &vocab); err != nil {
		return nil, fmt.Errorf("model.vocab: %w", err)
	}
	if s.vocab, err = vocabList(vocab); err != nil {
		return nil, err
	}
	if s.merges, err = parseJSONMerges(tj.Model.Merges); err != nil {
		return nil, err
	}
	for _, a := range tj.AddedTokens {
		if a.ID == nil {
			return nil, fmt.Errorf("added token %q has no id", a.Content)
		}
		if a.SingleWord {
			return nil, fmt.Errorf("added token %q: single_word is not supported", a.Content)
		}
		s.added = append(s.added, AddedToken{ID: *a.ID, Content: a.Content, Special: a.Special, LStrip: a.LStrip, RStrip: a.RStrip})
	}
	return s, nil
}

// patternFromPreTokenizer recognises the pre_tokenizer of tokenizer.json:
// a Split on the cl100k or o200k expression followed by a ByteLevel step
// without its own regex.
func patternFromPreTokenizer(raw json.RawMessage) (Pattern, error) {
	if len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "null" {
		return PatternNone, errors.New("no pre_tokenizer: only the cl100k and o200k pre-tokenizers are supported")
	}
	var pt hfPreTokenizer
	if err := json.Unmarshal(raw, &pt); err != nil {
		return PatternNone, fmt.Errorf("pre_tokenizer: %w", err)
	}
	steps := []hfPreTokenizer{pt}
	if pt.Type == "Sequence" {
		steps = pt.Pretokenizers
	}
	pat := PatternNone
	for _, st := range steps {
		switch st.Type {
		case "Split":
			if st.Pattern.Regex == nil || st.Invert || st.Behavior != "Isolated" || pat != PatternNone {
				return PatternNone, errors.New("pre_tokenizer: unsupported Split step")
			}
			p, ok := patternFromRegex(*st.Pattern.Regex)
			if !ok {
				return PatternNone, fmt.Errorf("pre_tokenizer: unknown split pattern %q (only cl100k and o200k are supported)", *st.Pattern.Regex)
			}
			pat = p
		case "ByteLevel":
			if st.UseRegex {
				return PatternNone, errors.New("pre_tokenizer: ByteLevel with GPT-2's own regex is not supported")
			}
			if st.AddPrefixSpace {
				return PatternNone, errors.New("pre_tokenizer: ByteLevel add_prefix_space is not supported")
			}
		default:
			return PatternNone, fmt.Errorf("pre_tokenizer: unsupported step %q", st.Type)
		}
	}
	if pat == PatternNone {
		return PatternNone, errors.New("pre_tokenizer: no Split step with a known pattern")
	}
	return pat, nil
}

// vocabList turns a token → id map into an id-indexed list.
func vocabList(vocab map[string]int) ([]string, error) {
	n := 0
	for tok, id := range vocab {
		if id < 0 || id >= maxVocab {
			return nil, fmt.Errorf("token %q has id %d out of range", tok, id)
		}
		n = max(n, id+1)
	}
	list := make([]string, n)
	for tok, id := range vocab {
		if tok == "" {
			return nil, fmt.Errorf("empty token with id %d", id)
		}
		if list[id] != "" {
			return nil, fmt.Errorf("id %d used by %q and %q", id, list[id], tok)
		}
		list[id] = tok
	}
	return list, nil
}

// parseJSONMerges reads merges as ["a b", ...] or [["a", "b"], ...].
func parseJSONMerges(raw json.RawMessage) ([][2]string, error) {
	var strs []string
	if err := json.Unmarshal(raw, &strs); err == nil {
		out := make([][2]string, 0, len(strs))
		for i, m := range strs {
			a, b, ok := strings.Cut(m, " ")
			if !ok || a == "" || b == "" || strings.Contains(b, " ") {
				return nil, fmt.Errorf("merge %d %q is not two tokens", i, m)
			}
			out = append(out, [2]string{a, b})
		}
		return out, nil
	}
	var pairs [][]string
	if err := json.Unmarshal(raw, &pairs); err != nil {
		return nil, fmt.Errorf("model.merges: %w", err)
	}
	out := make([][2]string, 0, len(pairs))
	for i, p := range pairs {
		if len(p) != 2 || p[0] == "" || p[1] == "" {
			return nil, fmt.Errorf("merge %d is not two tokens", i)
		}
		out = append(out, [2]string{p[0], p[1]})
	}
	return out, nil
}

// loadVocabMerges reads a GPT-2 style folder: vocab.json, merges.txt, and
// added tokens from tokenizer_config.json or added_tokens.json.
func loadVocabMerges(dir string) (*Tokenizer, error) {
	vocabData, err := readFile(filepath.Join(dir, "vocab.json"))
	if err != nil {
		return nil, err
	}
	mergesData, err := readFile(filepath.Join(dir, "merges.txt"))
	if err != nil {
		return nil, err
	}
	s, err := parseVocabMerges(vocabData, mergesData)
	if err != nil {
		return nil, err
	}
	if err := readConfigs(s, dir, true); err != nil {
		return nil, err
	}
	if s.pattern, err = guessPattern(s); err != nil {
		return nil, err
	}
	return build(s)
}

// parseVocabMerges reads the contents of vocab.json and merges.txt.
func parseVocabMerges(vocabData, mergesData []byte) (*spec, error) {
	var vocab map[string]int
	if err := json.Unmarshal(vocabData, &vocab); err != nil {
		return nil, fmt.Errorf("vocab.json: %w", err)
	}
	s := newSpec()
	s.kind = kindBPE
	var err error
	if s.vocab, err = vocabList(vocab); err != nil {
		return nil, fmt.Errorf("vocab.json: %w", err)
	}
	if s.merges, err = parseMergesTxt(mergesData); err != nil {
		return nil, fmt.Errorf("merges.txt: %w", err)
	}
	return s, nil
}

// parseMergesTxt reads merges.txt: an optional "#version" line, then one
// "left right" rule per line.
func parseMergesTxt(data []byte) ([][2]string, error) {
	var out [][2]string
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSuffix(sc.Text(), "\r")
		if text == "" || (line == 1 && strings.HasPrefix(text, "#version")) {
			continue
		}
		a, b, ok := strings.Cut(text, " ")
		if !ok || a == "" || b == "" || strings.Contains(b, " ") {
			return nil, fmt.Errorf("line %d %q is not two tokens", line, text)
		}
		out = append(out, [2]string{a, b})
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// guessPattern picks the pre-tokenizer of a vocab.json + merges.txt folder,
// which does not record it: the chat template tells phi-4 from phi-4-mini,
// else the size of the merge table tells cl100k (100,000 merges) from o200k
// (199,742).
func guessPattern(s *spec) (Pattern, error) {
	if c, ok := recognizeTemplate(s.template); ok {
		if c == chatPhi4 {
			return PatternCL100K, nil
		}
		return PatternO200K, nil
	}
	switch len(s.merges) {
	case 100000:
		return PatternCL100K, nil
	case 199742:
		return PatternO200K, nil
	}
	return PatternNone, fmt.Errorf("cannot tell the pre-tokenizer of this vocab.json/merges.txt (%d merges, unknown chat template); provide tokenizer.json", len(s.merges))
}

// tokenizerConfig holds the fields of tokenizer_config.json we use.
type tokenizerConfig struct {
	AddedTokensDecoder map[string]hfAddedToken `json:"added_tokens_decoder"`
	BOSToken           json.RawMessage         `json:"bos_token"`
	EOSToken           json.RawMessage         `json:"eos_token"`
	ChatTemplate       json.RawMessage         `json:"chat_template"`
	AddBOSToken        *bool                   `json:"add_bos_token"`
}

// tokenName reads a bos_token/eos_token value: a string or {"content": ...}.
func tokenName(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var obj struct {
		Content string `json:"content"`
	}
	if json.Unmarshal(raw, &obj) == nil {
		return obj.Content
	}
	return ""
}

// chatTemplateSource reads chat_template: a string, or a list of named
// templates of which "default" is used.
func chatTemplateSource(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var list []struct {
		Name     string `json:"name"`
		Template string `json:"template"`
	}
	if json.Unmarshal(raw, &list) == nil {
		for _, t := range list {
			if t.Name == "default" {
				return t.Template
			}
		}
	}
	return ""
}

// readConfigs fills BOS/EOS, stop ids, the chat template and (with
// wantAdded) the added tokens from the HF config files in dir. Missing
// files are fine; malformed ones are errors.
func readConfigs(s *spec, dir string, wantAdded bool) error {
	idOf := func(content string) int {
		for _, a := range s.added {
			if a.Content == content {
				return a.ID
			}
		}
		for id, tok := range s.vocab {
			if tok == content {
				return id
			}
		}
		return -1
	}
	var cfg tokenizerConfig
	cfgPath := filepath.Join(dir, "tokenizer_config.json")
	if data, err := readFile(cfgPath); err == nil {
		if err := json.Unmarshal(data, &cfg); err != nil {
			return fmt.Errorf("%s: %w", cfgPath, err)
		}
	} else if !os.IsNotExist(err) {
		return err
	}
	if wantAdded {
		for key, a := range cfg.AddedTokensDecoder {
			id, err := strconv.Atoi(key)
			if err != nil {
				return fmt.Errorf("%s: added_tokens_decoder key %q is not an id", cfgPath, key)
			}
			if a.SingleWord {
				return fmt.Errorf("%s: added token %q: single_word is not supported", cfgPath, a.Content)
			}
			s.added = append(s.added, AddedToken{ID: id, Content: a.Content, Special: a.Special, LStrip: a.LStrip, RStrip: a.RStrip})
		}
		atPath := filepath.Join(dir, "added_tokens.json")
		if data, err := readFile(atPath); err == nil {
			var at map[string]int
			if err := json.Unmarshal(data, &at); err != nil {
				return fmt.Errorf("%s: %w", atPath, err)
			}
			for content, id := range at {
				if !slices.ContainsFunc(s.added, func(a AddedToken) bool { return a.ID == id }) {
					s.added = append(s.added, AddedToken{ID: id, Content: content, Special: true})
				}
			}
		} else if !os.IsNotExist(err) {
			return err
		}
		slices.SortFunc(s.added, func(a, b AddedToken) int { return a.ID - b.ID })
	}
	bosName, eosName := tokenName(cfg.BOSToken), tokenName(cfg.EOSToken)
	var stm struct {
		BOSToken json.RawMessage `json:"bos_token"`
		EOSToken json.RawMessage `json:"eos_token"`
	}
	stmPath := filepath.Join(dir, "special_tokens_map.json")
	if data, err := readFile(stmPath); err == nil {
		if err := json.Unmarshal(data, &stm); err != nil {
			return fmt.Errorf("%s: %w", stmPath, err)
		}
	} else if !os.IsNotExist(err) {
		return err
	}
	if bosName == "" {
		bosName = tokenName(stm.BOSToken)
	}
	if eosName == "" {
		eosName = tokenName(stm.EOSToken)
	}
	if bosName != "" {
		s.bos = idOf(bosName)
	}
	if eosName != "" {
		s.eos = idOf(eosName)
	}
	if cfg.AddBOSToken != nil {
		s.wantBOS = *cfg.AddBOSToken
	}
	s.template = chatTemplateSource(cfg.ChatTemplate)
	if s.template == "" {
		if data, err := readFile(filepath.Join(dir, "chat_template.jinja")); err == nil {
			s.template = string(data)
		} else if !os.IsNotExist(err) {
			return err
		}
	}
	genPath := filepath.Join(dir, "generation_config.json")
	if data, err := readFile(genPath); err == nil {
		var gen struct {
			EOSTokenID json.RawMessage `json:"eos_token_id"`
		}
		if err := json.Unmarshal(data, &gen); err != nil {
			return fmt.Errorf("%s: %w", genPath, err)
		}
		var one int
		var many []int
		switch {
		case len(gen.EOSTokenID) == 0 || string(gen.EOSTokenID) == "null":
		case json.Unmarshal(gen.EOSTokenID, &one) == nil:
			s.stopIDs = append(s.stopIDs, one)
		case json.Unmarshal(gen.EOSTokenID, &many) == nil:
			s.stopIDs = append(s.stopIDs, many...)
		default:
			return fmt.Errorf("%s: eos_token_id is neither an id nor a list of ids", genPath)
		}
	} else if !os.IsNotExist(err) {
		return err
	}
	return nil
}

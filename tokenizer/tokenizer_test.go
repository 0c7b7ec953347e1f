package tokenizer

import (
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/phi4mac/phi4mac/internal/testrefs"
)

// TestPublic checks every case of public.jsonl (official tiktoken
// encode_ordinary ids) for cl100k and o200k, loaded from every source.
func TestPublic(t *testing.T) {
	cases := publicCases(t)
	for _, enc := range []struct {
		name    string
		sources []source
		want    func(publicCase) []int
	}{
		{"cl100k", cl100kSources(), func(c publicCase) []int { return c.CL100K }},
		{"o200k", o200kSources(), func(c publicCase) []int { return c.O200K }},
	} {
		for _, src := range enc.sources {
			t.Run(enc.name+"/"+src.name, func(t *testing.T) {
				tok := mustLoad(t, src.path(t))
				for _, c := range cases {
					checkIDs(t, c.ID, tok.Encode(c.Text, EncodeOptions{}), enc.want(c))
					// Without added tokens in the text, AllowSpecial changes nothing.
					if !strings.Contains(c.Text, "<|") {
						checkIDs(t, c.ID+" special", tok.Encode(c.Text, EncodeOptions{AllowSpecial: true}), enc.want(c))
					}
					if got := tok.Decode(enc.want(c)); got != c.Text {
						t.Errorf("%s: Decode = %q, want %q", c.ID, got, c.Text)
					}
				}
			})
		}
	}
}

// TestChat renders every chat.jsonl case with the model's template and
// checks the text, the ids HF transformers gives (added-token lstrip/rstrip)
// and the ordinary ids of the rendered text, for every source.
func TestChat(t *testing.T) {
	cases := chatCases(t)
	for _, m := range []struct {
		model   string
		sources []source
	}{
		{"phi4", cl100kSources()},
		{"phi4mini", o200kSources()},
	} {
		for _, src := range m.sources {
			t.Run(m.model+"/"+src.name, func(t *testing.T) {
				tok := mustLoad(t, src.path(t))
				if !tok.HasChatTemplate() {
					t.Fatal("no chat template")
				}
				n := 0
				for _, c := range cases {
					if c.Model != m.model {
						continue
					}
					n++
					if c.AddGenerationPrompt != nil {
						msgs := make([]Message, len(c.Messages))
						for i, cm := range c.Messages {
							msgs[i] = Message{Role: cm.Role, Content: cm.Content}
							if cm.Tools != nil {
								msgs[i].Tools = *cm.Tools
							}
						}
						got, err := tok.ApplyChatTemplate(msgs, *c.AddGenerationPrompt)
						if err != nil {
							t.Fatal(err)
						}
						if got != c.Rendered {
							t.Errorf("%s: rendered\n %q\nwant\n %q", c.Case, got, c.Rendered)
						}
					}
					checkIDs(t, c.Case, tok.Encode(c.Rendered, EncodeOptions{AllowSpecial: true}), c.HF)
					if c.OrdinaryIDs != nil {
						checkIDs(t, c.Case+" (ordinary)", tok.Encode(c.Rendered, EncodeOptions{}), c.OrdinaryIDs)
					}
				}
				if n == 0 {
					t.Fatal("no cases")
				}
			})
		}
	}
}

// TestEncodeChat: EncodeChat gives HF's ids when contents hold no added-token
// text, and keeps added-token text typed in contents as ordinary text.
func TestEncodeChat(t *testing.T) {
	cases := chatCases(t)
	for _, m := range []struct {
		model   string
		sources []source
	}{
		{"phi4", cl100kSources()},
		{"phi4mini", o200kSources()},
	} {
		for _, src := range m.sources {
			t.Run(m.model+"/"+src.name, func(t *testing.T) {
				tok := mustLoad(t, src.path(t))
				for _, c := range cases {
					if c.Model != m.model || c.AddGenerationPrompt == nil {
						continue
					}
					msgs := make([]Message, len(c.Messages))
					empty := make([]Message, len(c.Messages))
					injected := false
					for i, cm := range c.Messages {
						msgs[i] = Message{Role: cm.Role, Content: cm.Content}
						empty[i] = Message{Role: cm.Role}
						if cm.Tools != nil {
							msgs[i].Tools = *cm.Tools
							empty[i].Tools = "x"
						}
						injected = injected || strings.Contains(msgs[i].Content+msgs[i].Tools, "<|")
					}
					ids, err := tok.EncodeChat(msgs, *c.AddGenerationPrompt)
					if err != nil {
						t.Fatal(err)
					}
					if !injected {
						checkIDs(t, c.Case, ids, c.HF)
						continue
					}
					// Only the template's control tokens are special.
					skeleton, _ := tok.ApplyChatTemplate(empty, *c.AddGenerationPrompt)
					want := 0
					for _, id := range tok.Encode(skeleton, EncodeOptions{AllowSpecial: true}) {
						if tok.IsSpecial(id) {
							want++
						}
					}
					got := 0
					for _, id := range ids {
						if tok.IsSpecial(id) {
							got++
						}
					}
					if got != want {
						t.Errorf("%s: %d special ids, template has %d", c.Case, got, want)
					}
					if text := tok.Decode(ids); !strings.Contains(text, msgs[0].Content) {
						t.Errorf("%s: decoded %q lost the content", c.Case, text)
					}
				}
			})
		}
	}
	tok := mustLoad(t, testrefs.Path(t, "models", "stories260K", "stories260K.gguf"))
	if _, err := tok.EncodeChat([]Message{{Role: "user", Content: "hi"}}, true); err != ErrNoChatTemplate {
		t.Errorf("EncodeChat without a template: %v", err)
	}
}

// TestStopIDs checks BOS/EOS and stop ids against the models' configs.
func TestStopIDs(t *testing.T) {
	check := func(t *testing.T, tok *Tokenizer, bos, eos int, stop []int) {
		t.Helper()
		if got, ok := tok.BOS(); !ok || got != bos {
			t.Errorf("BOS = %d, %v; want %d", got, ok, bos)
		}
		if got, ok := tok.EOS(); !ok || got != eos {
			t.Errorf("EOS = %d, %v; want %d", got, ok, eos)
		}
		checkIDs(t, "StopIDs", tok.StopIDs(), stop)
	}
	for _, src := range cl100kSources() {
		t.Run("phi4/"+src.name, func(t *testing.T) {
			tok := mustLoad(t, src.path(t))
			check(t, tok, 100257, 100265, []int{100265})
			if tok.VocabSize() != 100352 {
				t.Errorf("VocabSize = %d", tok.VocabSize())
			}
			if tok.WantsBOS() {
				t.Error("WantsBOS")
			}
		})
	}
	for _, src := range o200kSources() {
		t.Run("phi4mini/"+src.name, func(t *testing.T) {
			tok := mustLoad(t, src.path(t))
			// generation_config.json: [200020, 199999]; a GGUF has no
			// generation config but its chat template's <|end|> gives 200020.
			check(t, tok, 199999, 199999, []int{199999, 200020})
		})
	}
}

// TestLlamaCppVocab runs llama.cpp's tokenizer test pair for cl100k
// (ggml-vocab-dbrx.gguf.out): the first 43 inputs.
func TestLlamaCppVocab(t *testing.T) {
	inp, err := os.ReadFile(testrefs.Path(t, "tokenizer", "llama.cpp-test", "ggml-vocab-llama-bpe.gguf.inp"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := os.ReadFile(testrefs.Path(t, "tokenizer", "llama.cpp-test", "ggml-vocab-dbrx.gguf.out"))
	if err != nil {
		t.Fatal(err)
	}
	inputs := strings.Split(string(inp), "\n__ggml_vocab_test__\n")
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if len(lines) != 43 || len(inputs) < 43 {
		t.Fatalf("%d inputs, %d outputs", len(inputs), len(lines))
	}
	for _, src := range cl100kSources() {
		t.Run(src.name, func(t *testing.T) {
			tok := mustLoad(t, src.path(t))
			for i, line := range lines {
				var want []int
				for _, f := range strings.Fields(line) {
					id, err := strconv.Atoi(f)
					if err != nil {
						t.Fatal(err)
					}
					want = append(want, id)
				}
				checkIDs(t, strconv.Quote(inputs[i]), tok.Encode(inputs[i], EncodeOptions{}), want)
			}
		})
	}
}

// TestStories260K checks the llama-style SentencePiece vocabulary of the
// real stories260K model against the prompts llama.cpp tokenized.
func TestStories260K(t *testing.T) {
	tok := mustLoad(t, testrefs.Path(t, "models", "stories260K", "stories260K.gguf"))
	tests := []struct {
		text string
		want []int
	}{
		{"Zoo", []int{1, 410, 469, 347}},
		{"Once upon a time", []int{1, 403, 407, 261, 378}},
		{"Lily and Tom went to the park", []int{1, 317, 269, 274, 287, 263, 377, 267, 265, 282, 295, 433}},
	}
	if !tok.WantsBOS() || tok.VocabSize() != 512 {
		t.Errorf("WantsBOS %v, VocabSize %d", tok.WantsBOS(), tok.VocabSize())
	}
	for _, tt := range tests {
		got := tok.Encode(tt.text, EncodeOptions{AddBOS: true})
		checkIDs(t, tt.text, got, tt.want)
		if back := tok.Decode(got); back != "<s>"+tt.text {
			t.Errorf("Decode = %q", back)
		}
		if back := tok.Decode(got[1:]); back != tt.text {
			t.Errorf("Decode = %q", back)
		}
	}
	// Characters with no piece fall back to <0xXX> byte tokens.
	for _, s := range []string{"Zoë 日本 \x00 \xff", "a  b\n"} {
		ids := tok.Encode(s, EncodeOptions{})
		if got := tok.Decode(ids); got != s {
			t.Errorf("round trip %q → %v → %q", s, ids, got)
		}
	}
	want := ", there was a little girl named Lily."
	sd := tok.NewStreamDecoder()
	var sb strings.Builder
	for _, id := range tok.Encode(want, EncodeOptions{}) {
		sb.WriteString(sd.Push(id))
	}
	sb.WriteString(sd.Flush())
	if sb.String() != want {
		t.Errorf("stream = %q", sb.String())
	}
}

// TestSmallModelSources checks that the truncated micro (cl100k) and
// micromini (o200k) vocabularies give the same ids from tokenizer.json,
// vocab.json+merges.txt and every GGUF of the model.
func TestSmallModelSources(t *testing.T) {
	cases := publicCases(t)
	chats := chatCases(t)
	for _, m := range []struct {
		name, chat string
		ggufs      []string
		bos, eos   int
		stop       []int
	}{
		{"micro", "phi4", []string{"phi3-random-micro-F32.gguf", "phi3-random-micro-Q4_K_M.gguf"}, 929, 937, []int{937}},
		{"micromini", "phi4mini", []string{"phi4mini-random-micromini-F32.gguf", "phi4mini-random-micromini-Q8_0.gguf"}, 959, 959, []int{959, 980}},
	} {
		t.Run(m.name, func(t *testing.T) {
			hf := testrefs.Path(t, "models", m.name, "hf")
			ref := mustLoad(t, hf) // tokenizer.json
			paths := []string{linkFiles(t, hf, append([]string{"vocab.json", "merges.txt"}, hfConfigFiles...)...)}
			for _, g := range m.ggufs {
				paths = append(paths, testrefs.Path(t, "models", m.name, g))
			}
			if got, _ := ref.BOS(); got != m.bos {
				t.Errorf("BOS %d", got)
			}
			if got, _ := ref.EOS(); got != m.eos {
				t.Errorf("EOS %d", got)
			}
			checkIDs(t, "stop", ref.StopIDs(), m.stop)
			for _, p := range paths {
				tok, err := Load(p)
				if err != nil {
					t.Fatal(err)
				}
				if tok.Pattern() != ref.Pattern() {
					t.Errorf("%s: pattern %v, want %v", p, tok.Pattern(), ref.Pattern())
				}
				for _, c := range cases {
					want := ref.Encode(c.Text, EncodeOptions{})
					checkIDs(t, p+" "+c.ID, tok.Encode(c.Text, EncodeOptions{}), want)
					if got := tok.Decode(want); got != c.Text {
						t.Errorf("%s %s: Decode = %q", p, c.ID, got)
					}
				}
				for _, c := range chats {
					if c.Model == m.chat {
						want := ref.Encode(c.Rendered, EncodeOptions{AllowSpecial: true})
						checkIDs(t, p+" "+c.Case, tok.Encode(c.Rendered, EncodeOptions{AllowSpecial: true}), want)
					}
				}
			}
		})
	}
}

// TestMicroSpecialIDs checks the micro/micromini special token ids against
// the reference prompts' ids (README §1.1, §1.2).
func TestMicroSpecialIDs(t *testing.T) {
	micro := mustLoad(t, testrefs.Path(t, "models", "micro", "hf"))
	checkIDs(t, "micro chat", micro.Encode("<|im_start|>user<|im_sep|>Hi<|im_end|>", EncodeOptions{AllowSpecial: true}),
		append(append([]int{936}, micro.Encode("user", EncodeOptions{})...), append(append([]int{938}, micro.Encode("Hi", EncodeOptions{})...), 937)...))
	mini := mustLoad(t, testrefs.Path(t, "models", "micromini", "hf"))
	checkIDs(t, "micromini chat", mini.Encode("<|user|>Hi<|end|><|assistant|>", EncodeOptions{AllowSpecial: true}),
		append(append([]int{981}, mini.Encode("Hi", EncodeOptions{})...), 980, 979))
	// Ids 989..1023 have no token in micromini.
	if s := mini.TokenString(1000); s != "" {
		t.Errorf("TokenString(1000) = %q", s)
	}
}

// TestSpecialTokensNeedPermission: added-token text is ordinary text unless
// AllowSpecial is set.
func TestSpecialTokensNeedPermission(t *testing.T) {
	tok := mustLoad(t, testrefs.Path(t, "models", "tiny", "hf", "tokenizer.json"))
	text := "<|im_start|>user<|im_sep|>hi<|im_end|>"
	plain := tok.Encode(text, EncodeOptions{})
	for _, id := range plain {
		if tok.IsSpecial(id) {
			t.Errorf("ordinary encoding produced special id %d", id)
		}
	}
	checkIDs(t, "special", tok.Encode(text, EncodeOptions{AllowSpecial: true}), []int{100264, 882, 100266, 6151, 100265})
	checkIDs(t, "bos", tok.Encode("hi", EncodeOptions{AddBOS: true}), []int{100257, 6151})
	if tok.Decode([]int{100264, 882}) != "<|im_start|>user" {
		t.Error("Decode of an added token")
	}
	if tok.TokenString(100265) != "<|im_end|>" || !tok.IsSpecial(100265) || tok.IsSpecial(882) {
		t.Error("TokenString/IsSpecial")
	}
}

// TestBadText: invalid UTF-8, NUL bytes and lone surrogate encodings encode
// byte-exactly.
func TestBadText(t *testing.T) {
	for _, src := range []source{cl100kSources()[0], o200kSources()[0]} {
		tok := mustLoad(t, src.path(t))
		for _, s := range []string{"\xff", "a\xffb", "\x00\x00\x00", "caf\xc3", "\xed\xa0\x80 x", "\xf4\x90\x80\x80", " \xc3\xa9\xcc", "'\xc5"} {
			ids := tok.Encode(s, EncodeOptions{AllowSpecial: true})
			if got := tok.Decode(ids); got != s {
				t.Errorf("%s: %q → %v → %q", src.name, s, ids, got)
			}
		}
	}
}

// TestLongInputs: long single-line runs (letters, digits, spaces, symbols)
// encode in linear time with correct ids; compared against the same text
// cut into short chunks at piece boundaries that cannot merge.
func TestLongInputs(t *testing.T) {
	tok := mustLoad(t, testrefs.Path(t, "models", "tiny", "hf", "tokenizer.json"))
	n := 1 << 20
	if testing.Short() {
		n = 1 << 16
	}
	for _, unit := range []string{"a", "ab", "1", " ", "!", "日", "\xff", "é"} {
		s := strings.Repeat(unit, n/len(unit))
		start := time.Now()
		ids := tok.Encode(s, EncodeOptions{})
		t.Logf("%q x %d: %v", unit, n/len(unit), time.Since(start))
		if got := tok.Decode(ids); got != s {
			t.Errorf("%q x %d: round trip failed", unit, n)
		}
		if len(ids) == 0 || len(ids) > len(s) {
			t.Errorf("%q: %d ids", unit, len(ids))
		}
	}
	// A long piece merges the same way with the heap as with the quadratic
	// loop: compare pieces just above and below the threshold.
	m := tok.bpe
	for _, s := range []string{strings.Repeat("xq", 40), strings.Repeat("Zy", 30) + "abc", strings.Repeat("é", 30)} {
		short := m.encodeSmallForTest(s)
		long := m.encodeLong(newEncState(), nil, s)
		checkIDs(t, "heap vs loop "+s, long, short)
	}
	// Huge pieces merge rank by rank; the result must equal the heap's and
	// the quadratic loop's.
	rng := rand.New(rand.NewPCG(7, 7))
	var sb strings.Builder
	for sb.Len() < 2000 {
		sb.WriteByte(byte('a' + rng.IntN(26)))
	}
	for _, s := range []string{sb.String(), strings.Repeat("ab", 1000), strings.Repeat("日本", 300), strings.Repeat(" ", 2000)} {
		huge, ok := m.encodeHuge(nil, s)
		if !ok {
			t.Errorf("encodeHuge fell back on %.20q", s)
		}
		checkIDs(t, "huge vs heap", huge, m.encodeLong(newEncState(), nil, s))
		checkIDs(t, "huge vs loop", huge, m.encodeSmallForTest(s))
	}
}

// encodeSmallForTest runs the quadratic merge loop on any length.
func (m *bpe) encodeSmallForTest(piece string) []int {
	ids := make([]int, len(piece))
	for i := 0; i < len(piece); i++ {
		ids[i] = int(m.byteID[piece[i]])
	}
	for len(ids) > 1 {
		best, bi := uint32(noMerge), -1
		var bm int32
		for i := 0; i+1 < len(ids); i++ {
			if r, id := m.merges.get(int32(ids[i]), int32(ids[i+1])); r < best {
				best, bi, bm = r, i, id
			}
		}
		if bi < 0 {
			break
		}
		ids[bi] = int(bm)
		ids = append(ids[:bi+1], ids[bi+2:]...)
	}
	return ids
}

// TestStreamDecoder: the stream never splits a UTF-8 character and adds up
// to Decode.
func TestStreamDecoder(t *testing.T) {
	tok := mustLoad(t, testrefs.Path(t, "models", "tiny", "hf", "tokenizer.json"))
	for _, c := range publicCases(t) {
		sd := tok.NewStreamDecoder()
		var sb strings.Builder
		for _, id := range c.CL100K {
			piece := sd.Push(id)
			if !utf8.ValidString(piece) {
				t.Errorf("%s: piece %q is not valid UTF-8", c.ID, piece)
			}
			sb.WriteString(piece)
		}
		sb.WriteString(sd.Flush())
		if want := strings.ToValidUTF8(c.Text, "\uFFFD"); utf8.ValidString(c.Text) && sb.String() != want {
			t.Errorf("%s: stream %q, want %q", c.ID, sb.String(), want)
		}
	}
	// An emoji split over byte tokens comes out whole.
	sd := tok.NewStreamDecoder()
	emoji := "👋"
	var got []string
	for i := 0; i < len(emoji); i++ {
		got = append(got, sd.Push(int(tok.bpe.byteID[emoji[i]])))
	}
	if strings.Join(got[:3], "") != "" || got[3] != emoji {
		t.Errorf("pieces %q", got)
	}
	// An incomplete character is flushed as U+FFFD.
	sd.Push(int(tok.bpe.byteID[0xe6]))
	if f := sd.Flush(); f != "\uFFFD" {
		t.Errorf("Flush = %q", f)
	}
}

// TestEveryTokenReachable: merging the bytes of any BPE token gives that
// token. So the whole-piece lookup (tiktoken's shortcut) never changes a
// result compared with plain merging (HF tokenizers): the two agree on every
// input for these vocabularies. The 19 o200k ids without merges are
// phi-4-mini's <|endoftext00|>-style placeholders, outside o200k_base.
func TestEveryTokenReachable(t *testing.T) {
	if testing.Short() {
		t.Skip("merges 300,000 tokens")
	}
	for _, c := range []struct {
		path        string
		unreachable int
	}{
		{testrefs.Path(t, "models", "tiny", "hf", "tokenizer.json"), 0},
		{testrefs.Path(t, "tokenizer", "phi4mini"), 19},
	} {
		tok := mustLoad(t, c.path)
		st := newEncState()
		bad := 0
		for id, s := range tok.tokens {
			if len(s) < 2 || tok.special[id] {
				continue
			}
			var got []int
			if len(s) > smallPiece {
				got = tok.bpe.encodeLong(st, nil, s)
			} else {
				got = tok.bpe.merge(st, nil, s)
			}
			if len(got) != 1 || got[0] != id {
				if !strings.HasPrefix(s, "<|endoftext") {
					t.Errorf("%s: token %d %q merges to %v", c.path, id, s, got)
				}
				bad++
			}
		}
		if bad != c.unreachable {
			t.Errorf("%s: %d unreachable tokens, want %d", c.path, bad, c.unreachable)
		}
	}
}

package tokenizer

import (
	"errors"
	"slices"
	"strings"
)

// Message is one turn of a chat.
type Message struct {
	Role    string // "system", "user", "assistant", ...
	Content string
	// Tools is a JSON list of tool definitions. phi-4-mini's template shows
	// it in a system message; empty means none.
	Tools string
}

// chatTemplate is a chat template this package renders natively.
type chatTemplate int

const (
	chatNone     chatTemplate = iota
	chatPhi4                  // <|im_start|>role<|im_sep|>content<|im_end|>
	chatPhi4Mini              // <|role|>content<|end|>, tools block
)

// The chat_template strings of microsoft/phi-4 and Phi-4-mini-instruct.
const (
	phi4Template     = `{% for message in messages %}{% if (message['role'] == 'system') %}{{'<|im_start|>system<|im_sep|>' + message['content'] + '<|im_end|>'}}{% elif (message['role'] == 'user') %}{{'<|im_start|>user<|im_sep|>' + message['content'] + '<|im_end|>'}}{% elif (message['role'] == 'assistant') %}{{'<|im_start|>assistant<|im_sep|>' + message['content'] + '<|im_end|>'}}{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant<|im_sep|>' }}{% endif %}`
	phi4MiniTemplate = `{% for message in messages %}{% if message['role'] == 'system' and 'tools' in message and message['tools'] is not none %}{{ '<|' + message['role'] + '|>' + message['content'] + '<|tool|>' + message['tools'] + '<|/tool|>' + '<|end|>' }}{% else %}{{ '<|' + message['role'] + '|>' + message['content'] + '<|end|>' }}{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>' }}{% else %}{{ eos_token }}{% endif %}`
)

// ErrNoChatTemplate is returned by ApplyChatTemplate when the model has no
// chat template this package can render.
var ErrNoChatTemplate = errors.New("tokenizer: no supported chat template")

// recognizeTemplate maps a Jinja chat template to a native renderer. Only the
// phi-4 and phi-4-mini templates are known; templates are compared as
// templateShape gives them, so they match only where Jinja renders the same
// text.
func recognizeTemplate(src string) (chatTemplate, bool) {
	switch templateShape(src) {
	case templateShape(phi4Template):
		return chatPhi4, true
	case templateShape(phi4MiniTemplate):
		return chatPhi4Mini, true
	}
	return chatNone, false
}

// templateShape returns a Jinja template less the white space that does not
// reach the output when HF transformers renders it (trim_blocks and
// lstrip_blocks on): white space inside {{ }} and {% %} tags outside string
// literals, the newline just after a block tag, and spaces and tabs between
// the start of a line and a block tag. Everything else, string literals and
// the template's own text included, is kept as it is.
func templateShape(src string) string {
	var sb strings.Builder
	data := 0 // start of the template text not yet written
	for i := 0; i+1 < len(src); {
		if src[i] != '{' || (src[i+1] != '{' && src[i+1] != '%') {
			i++
			continue
		}
		block := src[i+1] == '%'
		text := src[data:i]
		if block {
			line := strings.LastIndexByte(text, '\n') + 1
			if (line > 0 || data == 0 || src[data-1] == '\n') && strings.Trim(text[line:], " \t") == "" {
				text = text[:line] // lstrip_blocks
			}
		}
		sb.WriteString(text)
		closer := "}}"
		if block {
			closer = "%}"
		}
		sb.WriteString(src[i : i+2])
		j := i + 2
		var quote byte
	tag:
		for ; j < len(src); j++ {
			c := src[j]
			switch {
			case quote != 0:
				sb.WriteByte(c)
				if c == '\\' && j+1 < len(src) {
					j++
					sb.WriteByte(src[j])
				} else if c == quote {
					quote = 0
				}
			case c == '\'' || c == '"':
				quote = c
				sb.WriteByte(c)
			case strings.HasPrefix(src[j:], closer):
				sb.WriteString(closer)
				j += len(closer)
				break tag
			case c != ' ' && c != '\t' && c != '\n' && c != '\r':
				sb.WriteByte(c)
			}
		}
		if block && j < len(src) && src[j] == '\n' {
			j++ // trim_blocks
		}
		data, i = j, j
	}
	sb.WriteString(src[data:])
	return sb.String()
}

// endOfTurn returns the content of the template's end-of-turn token.
func (c chatTemplate) endOfTurn() string {
	switch c {
	case chatPhi4:
		return "<|im_end|>"
	case chatPhi4Mini:
		return "<|end|>"
	}
	return ""
}

// HasChatTemplate reports whether ApplyChatTemplate can render prompts.
func (t *Tokenizer) HasChatTemplate() bool { return t.chat != chatNone }

// ApplyChatTemplate renders msgs with the model's chat template, exactly as
// the template's Jinja source does, and with addGenerationPrompt appends the
// assistant header that asks the model to answer. Encode the result with
// EncodeOptions{AllowSpecial: true}.
func (t *Tokenizer) ApplyChatTemplate(msgs []Message, addGenerationPrompt bool) (string, error) {
	var r chatRender
	if err := t.render(&r, msgs, addGenerationPrompt); err != nil {
		return "", err
	}
	return r.sb.String(), nil
}

// EncodeChat renders msgs like ApplyChatTemplate and encodes the result, but
// added-token text inside message contents (and tools) stays ordinary text:
// only the template's own <|im_start|>, <|end|>, ... become control tokens,
// and a phi-4-mini role header such as <|user|> only when it is one added
// token as a whole.
// White space next to them is stripped as HF does, so when no content holds
// added-token text the ids equal
// Encode(ApplyChatTemplate(msgs, addGenerationPrompt), EncodeOptions{AllowSpecial: true}).
// Use it for text from users.
func (t *Tokenizer) EncodeChat(msgs []Message, addGenerationPrompt bool) ([]int, error) {
	var r chatRender
	r.mask = true
	if err := t.render(&r, msgs, addGenerationPrompt); err != nil {
		return nil, err
	}
	text := r.sb.String()
	dst := make([]int, 0, len(text)/3+8)
	afterSpecial := true
	t.added.splitMasked(text, r.allowed, func(seg string) {
		dst = t.encodeText(dst, seg, afterSpecial)
		afterSpecial = false
	}, func(a AddedToken) {
		dst = append(dst, a.ID)
		afterSpecial = true
	})
	return dst, nil
}

// chatRender accumulates rendered text and, with mask, which bytes come from
// the template itself (where added tokens may be matched).
type chatRender struct {
	sb      strings.Builder
	mask    bool
	allowed []bool
}

func (r *chatRender) add(s string, template bool) {
	r.sb.WriteString(s)
	if r.mask {
		for range len(s) {
			r.allowed = append(r.allowed, template)
		}
	}
}

func (t *Tokenizer) render(r *chatRender, msgs []Message, addGenerationPrompt bool) error {
	switch t.chat {
	case chatPhi4:
		for _, m := range msgs {
			switch m.Role {
			case "system", "user", "assistant":
				r.add("<|im_start|>"+m.Role+"<|im_sep|>", true)
				r.add(m.Content, false)
				r.add("<|im_end|>", true)
			}
		}
		if addGenerationPrompt {
			r.add("<|im_start|>assistant<|im_sep|>", true)
		}
	case chatPhi4Mini:
		for _, m := range msgs {
			// The role comes from the caller: its header is the template's
			// only when it is one added token, such as <|user|>.
			header := "<|" + m.Role + "|>"
			r.add(header, t.isAddedToken(header))
			r.add(m.Content, false)
			if m.Role == "system" && m.Tools != "" {
				r.add("<|tool|>", true)
				r.add(m.Tools, false)
				r.add("<|/tool|>", true)
			}
			r.add("<|end|>", true)
		}
		if addGenerationPrompt {
			r.add("<|assistant|>", true)
		} else if t.eos >= 0 {
			r.add(t.tokens[t.eos], true)
		}
	default:
		return ErrNoChatTemplate
	}
	return nil
}

// isAddedToken reports whether s is the content of an added token.
func (t *Tokenizer) isAddedToken(s string) bool {
	return slices.ContainsFunc(t.added.tokens, func(a AddedToken) bool { return a.Content == s })
}

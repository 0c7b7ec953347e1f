package tokenizer

import (
	"errors"
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
// phi-4 and phi-4-mini templates are known; white space outside the string
// literals is ignored when comparing.
func recognizeTemplate(src string) (chatTemplate, bool) {
	norm := func(s string) string { return strings.Join(strings.Fields(s), "") }
	switch norm(src) {
	case norm(phi4Template):
		return chatPhi4, true
	case norm(phi4MiniTemplate):
		return chatPhi4Mini, true
	}
	return chatNone, false
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
	var sb strings.Builder
	switch t.chat {
	case chatPhi4:
		for _, m := range msgs {
			switch m.Role {
			case "system", "user", "assistant":
				sb.WriteString("<|im_start|>" + m.Role + "<|im_sep|>" + m.Content + "<|im_end|>")
			}
		}
		if addGenerationPrompt {
			sb.WriteString("<|im_start|>assistant<|im_sep|>")
		}
	case chatPhi4Mini:
		for _, m := range msgs {
			sb.WriteString("<|" + m.Role + "|>" + m.Content)
			if m.Role == "system" && m.Tools != "" {
				sb.WriteString("<|tool|>" + m.Tools + "<|/tool|>")
			}
			sb.WriteString("<|end|>")
		}
		if addGenerationPrompt {
			sb.WriteString("<|assistant|>")
		} else if t.eos >= 0 {
			sb.WriteString(t.tokens[t.eos])
		}
	default:
		return "", ErrNoChatTemplate
	}
	return sb.String(), nil
}

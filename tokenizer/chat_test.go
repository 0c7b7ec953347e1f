package tokenizer

import (
	"strings"
	"testing"
)

// TestRecognizeTemplate: a template is rendered natively only when Jinja
// (as HF transformers runs it: trim_blocks, lstrip_blocks) would render it
// exactly like the official one. White space inside tags is free; white
// space in string literals or in the template's text is output and must
// match.
func TestRecognizeTemplate(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want chatTemplate
	}{
		{"phi-4", phi4Template, chatPhi4},
		{"phi-4-mini", phi4MiniTemplate, chatPhi4Mini},
		{"spaces in tags", strings.ReplaceAll(phi4Template, "{{'", "{{  '"), chatPhi4},
		{"newlines in tags", strings.ReplaceAll(phi4MiniTemplate, " + ", "\n + "), chatPhi4Mini},
		// trim_blocks drops the newline after a block tag; lstrip_blocks
		// the indentation before one.
		{"block per line", strings.ReplaceAll(phi4Template, "%}{%", "%}\n  {%"), chatPhi4},
		{"newline in a literal", strings.ReplaceAll(phi4Template, "'<|im_end|>'", "'<|im_end|>\n'"), chatNone},
		{"space in a literal", strings.ReplaceAll(phi4MiniTemplate, "'<|assistant|>'", "'<|assistant|> '"), chatNone},
		{"newline after an expression", strings.ReplaceAll(phi4Template, "}}{%", "}}\n{%"), chatNone},
		{"text between blocks", strings.ReplaceAll(phi4Template, "%}{%", "%}x{%"), chatNone},
		{"two newlines after a block", strings.ReplaceAll(phi4Template, "{% endfor %}", "{% endfor %}\n\n"), chatNone},
		{"other", "{{ messages }}", chatNone},
	}
	for _, tt := range tests {
		if got, _ := recognizeTemplate(tt.src); got != tt.want {
			t.Errorf("%s: recognized as %d, want %d", tt.name, got, tt.want)
		}
	}
}

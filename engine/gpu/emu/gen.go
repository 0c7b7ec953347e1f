package emu

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Kernel is a kernel function's signature as parsed from a .metal file.
type Kernel struct {
	Name   string
	Params []Param
}

// Param is one kernel parameter and its attribute.
type Param struct {
	Type  string // as written, e.g. "device const float*" or "constant GemvArgs&"
	Name  string
	Attr  string // "buffer", "threadgroup" or a built-in such as "thread_position_in_grid"
	Index int    // n of [[buffer(n)]] / [[threadgroup(n)]]
}

var kernelRE = regexp.MustCompile(`\bkernel\s+void\s+([A-Za-z_]\w*)\s*\(`)

// builtins maps Metal's built-in attributes to the emulator's LaneInfo
// fields and their dimensionality (1 or 3).
var builtins = map[string]struct {
	field string
	dims  int
}{
	"thread_position_in_grid":        {"thread_position_in_grid", 3},
	"thread_position_in_threadgroup": {"thread_position_in_threadgroup", 3},
	"threadgroup_position_in_grid":   {"threadgroup_position_in_grid", 3},
	"threads_per_threadgroup":        {"threads_per_threadgroup", 3},
	"threadgroups_per_grid":          {"threadgroups_per_grid", 3},
	"threads_per_grid":               {"threads_per_grid", 3},
	"thread_index_in_threadgroup":    {"thread_index_in_threadgroup", 1},
	"thread_index_in_simdgroup":      {"thread_index_in_simdgroup", 1},
	"simdgroup_index_in_threadgroup": {"simdgroup_index_in_threadgroup", 1},
	"threads_per_simdgroup":          {"threads_per_simdgroup", 1},
	"thread_execution_width":         {"threads_per_simdgroup", 1},
	"simdgroups_per_threadgroup":     {"simdgroups_per_threadgroup", 1},
}

// blankComments replaces comments with spaces, keeping offsets and newlines.
func blankComments(src string) string {
	b := []byte(src)
	for i := 0; i < len(b); i++ {
		switch {
		case b[i] == '"':
			for i++; i < len(b) && b[i] != '"' && b[i] != '\n'; i++ {
				if b[i] == '\\' {
					i++
				}
			}
		case b[i] == '/' && i+1 < len(b) && b[i+1] == '/':
			for ; i < len(b) && b[i] != '\n'; i++ {
				b[i] = ' '
			}
		case b[i] == '/' && i+1 < len(b) && b[i+1] == '*':
			for ; i < len(b) && !(b[i] == '*' && i+1 < len(b) && b[i+1] == '/'); i++ {
				if b[i] != '\n' {
					b[i] = ' '
				}
			}
			if i+1 < len(b) {
				b[i], b[i+1] = ' ', ' '
				i++
			}
		}
	}
	return string(b)
}

// ParseKernels finds the kernel functions of a .metal source.
func ParseKernels(src string) ([]Kernel, error) {
	clean := blankComments(src)
	var ks []Kernel
	for _, m := range kernelRE.FindAllStringSubmatchIndex(clean, -1) {
		name := clean[m[2]:m[3]]
		open := m[1] - 1
		closeAt, err := matchParen(clean, open)
		if err != nil {
			return nil, fmt.Errorf("kernel %s: %w", name, err)
		}
		k := Kernel{Name: name}
		for _, p := range splitTop(clean[open+1 : closeAt]) {
			param, err := parseParam(p)
			if err != nil {
				return nil, fmt.Errorf("kernel %s: %w", name, err)
			}
			k.Params = append(k.Params, param)
		}
		ks = append(ks, k)
	}
	return ks, nil
}

func matchParen(s string, open int) (int, error) {
	depth := 0
	for i := open; i < len(s); i++ {
		switch s[i] {
		case '(':
			depth++
		case ')':
			depth--
			if depth == 0 {
				return i, nil
			}
		}
	}
	return 0, fmt.Errorf("unbalanced parentheses")
}

// splitTop splits s at commas outside (), [] and <>.
func splitTop(s string) []string {
	var parts []string
	depth, start := 0, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '(', '[', '<':
			depth++
		case ')', ']', '>':
			depth--
		case ',':
			if depth == 0 {
				parts = append(parts, s[start:i])
				start = i + 1
			}
		}
	}
	if strings.TrimSpace(s[start:]) != "" {
		parts = append(parts, s[start:])
	}
	return parts
}

var (
	attrRE  = regexp.MustCompile(`\[\[\s*([A-Za-z_]\w*)\s*(?:\(\s*(\d+)\s*\))?\s*\]\]`)
	identRE = regexp.MustCompile(`([A-Za-z_]\w*)\s*$`)
)

func parseParam(p string) (Param, error) {
	p = strings.Join(strings.Fields(p), " ")
	a := attrRE.FindStringSubmatchIndex(p)
	if a == nil {
		return Param{}, fmt.Errorf("parameter %q has no [[attribute]]", p)
	}
	decl := strings.TrimSpace(p[:a[0]])
	id := identRE.FindStringSubmatchIndex(decl)
	if id == nil {
		return Param{}, fmt.Errorf("parameter %q has no name", p)
	}
	param := Param{
		Type: strings.TrimSpace(decl[:id[2]]),
		Name: decl[id[2]:id[3]],
		Attr: p[a[2]:a[3]],
	}
	if param.Type == "" {
		return Param{}, fmt.Errorf("parameter %q has no type", p)
	}
	if a[4] >= 0 {
		n, err := strconv.Atoi(p[a[4]:a[5]])
		if err != nil {
			return Param{}, fmt.Errorf("parameter %q: %w", p, err)
		}
		param.Index = n
	}
	switch param.Attr {
	case "buffer":
		if param.Index >= 31 {
			return Param{}, fmt.Errorf("parameter %s: buffer index %d past 30", param.Name, param.Index)
		}
		if !strings.HasSuffix(param.Type, "*") && !strings.HasSuffix(param.Type, "&") {
			return Param{}, fmt.Errorf("parameter %s: [[buffer]] needs a pointer or reference, got %q", param.Name, param.Type)
		}
	case "threadgroup":
		if param.Index >= 8 || !strings.HasSuffix(param.Type, "*") {
			return Param{}, fmt.Errorf("parameter %s: bad [[threadgroup(%d)]] %q", param.Name, param.Index, param.Type)
		}
	default:
		if _, ok := builtins[param.Attr]; !ok {
			return Param{}, fmt.Errorf("parameter %s: unsupported attribute [[%s]]", param.Name, param.Attr)
		}
	}
	return param, nil
}

// tgDeclRE matches a kernel-scope threadgroup array declaration on one line.
var tgDeclRE = regexp.MustCompile(`(?m)^([ \t]*)threadgroup[ \t]+([A-Za-z_][\w:<>, ]*?)[ \t]+([A-Za-z_]\w*)[ \t]*((?:\[[^\]\n]+\])+)[ \t]*;`)

var tgAttrRE = regexp.MustCompile(`\[\[\s*threadgroup\s*\(`)

// Rewrite turns kernel-scope threadgroup arrays into references to the
// threadgroup's shared arena (each lane gets the same address), keeping
// every line where it was so compiler messages point at the .metal file.
// The [[threadgroup(n)]] attribute is renamed, as the shim defines
// threadgroup away.
func Rewrite(src string) string {
	src = tgAttrRE.ReplaceAllString(src, "[[emu_threadgroup(")
	return tgDeclRE.ReplaceAllString(src,
		"${1}auto& ${3} = *reinterpret_cast<${2}(*)${4}>(emu::tg_alloc(sizeof(${2}${4}), alignof(${2})));")
}

// Launchers returns the C++ launcher of each kernel: extern "C"
// emu_k_<name>(emu_launch*) binds buffers and built-ins and runs the
// dispatch.
func Launchers(ks []Kernel) string {
	var b strings.Builder
	for _, k := range ks {
		fmt.Fprintf(&b, "static void emu_body_%s(emu_launch* L) {\n", k.Name)
		b.WriteString("  const emu::LaneInfo& li = emu::lane();\n  (void)li;\n")
		var args []string
		for _, p := range k.Params {
			v := "a_" + p.Name
			switch p.Attr {
			case "buffer":
				if strings.HasSuffix(p.Type, "&") {
					t := strings.TrimSuffix(p.Type, "&")
					fmt.Fprintf(&b, "  %s& %s = *(%s*)L->buf[%d];\n", t, v, t, p.Index)
				} else {
					fmt.Fprintf(&b, "  %s %s = (%s)L->buf[%d];\n", p.Type, v, p.Type, p.Index)
				}
			case "threadgroup":
				fmt.Fprintf(&b, "  %s %s = (%s)emu::tg_alloc(L->tg_len[%d], 16);\n", p.Type, v, p.Type, p.Index)
			default:
				bi := builtins[p.Attr]
				if bi.dims == 1 {
					fmt.Fprintf(&b, "  %s %s = (%s)li.%s;\n", p.Type, v, p.Type, bi.field)
				} else {
					fmt.Fprintf(&b, "  %s %s = emu_builtin<%s>(li.%s);\n", p.Type, v, p.Type, bi.field)
				}
			}
			args = append(args, v)
		}
		fmt.Fprintf(&b, "  %s(%s);\n}\n", k.Name, strings.Join(args, ", "))
		fmt.Fprintf(&b, "extern \"C\" int emu_k_%s(emu_launch* L) { return emu::dispatch(L, emu_body_%s); }\n\n", k.Name, k.Name)
	}
	return b.String()
}

// translationUnit is the C++ the emulator compiles for one .metal file.
func translationUnit(name, src string, ks []Kernel) string {
	var b strings.Builder
	b.WriteString("#include \"metal_stdlib\"\n#include \"emu_builtin.h\"\n")
	fmt.Fprintf(&b, "#line 1 %q\n", name)
	b.WriteString(Rewrite(src))
	fmt.Fprintf(&b, "\n#line 1 \"%s (emulator launchers)\"\n", name)
	b.WriteString(Launchers(ks))
	return b.String()
}

package gpu

import (
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/phi4mac/phi4mac/metal"
)

// TestArgsMatchHeader checks that every struct of metal/args.h has a Go
// twin here with the same fields, in the same order, of the same types.
func TestArgsMatchHeader(t *testing.T) {
	src, err := metal.Read("args.h")
	if err != nil {
		t.Fatal(err)
	}
	goTypes := map[string]reflect.Type{
		"RMSNormArgs": reflect.TypeOf(RMSNormArgs{}), "GemvArgs": reflect.TypeOf(GemvArgs{}),
		"GemmArgs": reflect.TypeOf(GemmArgs{}), "RopeArgs": reflect.TypeOf(RopeArgs{}),
		"EmbedArgs": reflect.TypeOf(EmbedArgs{}), "ElementwiseArgs": reflect.TypeOf(ElementwiseArgs{}),
		"KVAppendArgs": reflect.TypeOf(KVAppendArgs{}), "AttnArgs": reflect.TypeOf(AttnArgs{}),
		"ArgmaxArgs": reflect.TypeOf(ArgmaxArgs{}),
	}
	structRE := regexp.MustCompile(`(?s)struct\s+(\w+)\s*\{(.*?)\};`)
	fieldRE := regexp.MustCompile(`(?m)^\s*(\w+)\s+(\w+)\s*;`)
	cTypes := map[string]reflect.Kind{"uint": reflect.Uint32, "float": reflect.Float32, "int": reflect.Int32}
	seen := 0
	for _, m := range structRE.FindAllStringSubmatch(src, -1) {
		name := m[1]
		gt, ok := goTypes[name]
		if !ok {
			t.Errorf("struct %s in args.h has no Go twin", name)
			continue
		}
		seen++
		fields := fieldRE.FindAllStringSubmatch(m[2], -1)
		if len(fields) != gt.NumField() {
			t.Errorf("%s: %d fields in args.h, %d in Go", name, len(fields), gt.NumField())
			continue
		}
		for i, f := range fields {
			gf := gt.Field(i)
			if want := camel(f[2]); gf.Name != want {
				t.Errorf("%s field %d: Go %s, header %s (want Go name %s)", name, i, gf.Name, f[2], want)
			}
			if k, ok := cTypes[f[1]]; !ok || gf.Type.Kind() != k {
				t.Errorf("%s.%s: header type %s, Go %s", name, f[2], f[1], gf.Type)
			}
		}
		if got, want := len(Pack(reflect.New(gt).Elem().Interface())), 4*len(fields); got != want {
			t.Errorf("%s packs to %d bytes, want %d", name, got, want)
		}
	}
	if seen != len(goTypes) {
		t.Errorf("args.h has %d of the %d Go structs", seen, len(goTypes))
	}
}

func camel(s string) string {
	parts := strings.Split(s, "_")
	for i, p := range parts {
		switch p {
		case "kv":
			parts[i] = "KV"
		case "tok":
			parts[i] = "Tok"
		default:
			parts[i] = strings.ToUpper(p[:1]) + p[1:]
		}
	}
	return strings.Join(parts, "")
}

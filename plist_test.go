// The repository root holds no Go package, only this test of the macOS bundle
// metadata that `make app` copies into phi4mac.app.
package phi4mac_test

import (
	"encoding/xml"
	"os"
	"testing"
)

// plistValue is one decoded property-list value: a string, a bool, an array
// or a dict (keys and values in order).
type plistValue struct {
	kind  string
	text  string
	items []plistValue
	keys  []string
}

func (v *plistValue) UnmarshalXML(d *xml.Decoder, start xml.StartElement) error {
	v.kind = start.Name.Local
	switch v.kind {
	case "true", "false":
		return d.Skip()
	case "string", "integer", "real", "date", "data":
		return d.DecodeElement(&v.text, &start)
	}
	for {
		tok, err := d.Token()
		if err != nil {
			return err
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			if tok.Name.Local == "key" {
				var k string
				if err := d.DecodeElement(&k, &tok); err != nil {
					return err
				}
				v.keys = append(v.keys, k)
				continue
			}
			var item plistValue
			if err := item.UnmarshalXML(d, tok); err != nil {
				return err
			}
			v.items = append(v.items, item)
		case xml.EndElement:
			return nil
		}
	}
}

func (v plistValue) get(key string) (plistValue, bool) {
	for i, k := range v.keys {
		if k == key && i < len(v.items) {
			return v.items[i], true
		}
	}
	return plistValue{}, false
}

func TestInfoPlist(t *testing.T) {
	data, err := os.ReadFile("Info.plist")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Dict plistValue `xml:"dict"`
	}
	if err := xml.Unmarshal(data, &doc); err != nil {
		t.Fatalf("Info.plist is not a valid property list: %v", err)
	}
	root := doc.Dict
	want := map[string]string{
		"CFBundleIdentifier":         "io.github.phi4mac",
		"CFBundleExecutable":         "phi4mac",
		"CFBundlePackageType":        "APPL",
		"CFBundleShortVersionString": "__VERSION__",
		"CFBundleVersion":            "__VERSION__",
		"LSMinimumSystemVersion":     "13.0",
	}
	for key, text := range want {
		got, ok := root.get(key)
		if !ok || got.text != text {
			t.Errorf("%s = %q, want %q", key, got.text, text)
		}
	}
	if v, ok := root.get("LSUIElement"); !ok || v.kind != "true" {
		t.Errorf("LSUIElement must be true for a menu-bar-only app, got %+v", v)
	}
	urlTypes, ok := root.get("CFBundleURLTypes")
	if !ok || len(urlTypes.items) == 0 {
		t.Fatal("CFBundleURLTypes missing: the phi4mac:// URL scheme is not registered")
	}
	schemes, ok := urlTypes.items[0].get("CFBundleURLSchemes")
	if !ok || len(schemes.items) != 1 || schemes.items[0].text != "phi4mac" {
		t.Errorf("CFBundleURLSchemes = %+v, want [phi4mac]", schemes)
	}
}

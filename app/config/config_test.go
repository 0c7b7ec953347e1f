package config

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestLoadPrecedence(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, []byte("temperature: 0.2\nsystem_prompt: from file\nidle_unload: 30s\napi:\n  addr: 127.0.0.1:9000\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	fs.Float64("temperature", 0, "")
	fs.String("addr", "", "")
	fs.String("system", "", "")
	if err := fs.Parse([]string{"--addr", "localhost:9100"}); err != nil {
		t.Fatal(err)
	}
	s, err := Load(LoadOptions{Path: path, Flags: fs, Getenv: env(map[string]string{
		"PHI4MAC_SYSTEM_PROMPT": "from env",
		"PHI4MAC_API_ADDR":      "127.0.0.1:9050",
		"PHI4MAC_API_KEY":       "sekrit",
		"PHI4MAC_MAX_TOKENS":    "77",
	})})
	if err != nil {
		t.Fatal(err)
	}
	if s.Temperature != 0.2 { // file; flag not set by the user
		t.Errorf("temperature = %g, want 0.2 from file", s.Temperature)
	}
	if s.SystemPrompt != "from env" {
		t.Errorf("system prompt = %q, want env", s.SystemPrompt)
	}
	if s.API.Addr != "localhost:9100" {
		t.Errorf("addr = %q, want flag", s.API.Addr)
	}
	if s.API.Token != "sekrit" || s.MaxTokens != 77 || s.IdleUnload != 30*time.Second {
		t.Errorf("token %q max_tokens %d idle %s", s.API.Token, s.MaxTokens, s.IdleUnload)
	}
	if s.TopP != Defaults().TopP {
		t.Errorf("top_p = %g, want default", s.TopP)
	}
}

func TestLoadMissingFileIsDefaults(t *testing.T) {
	s, err := Load(LoadOptions{Path: filepath.Join(t.TempDir(), "none.yaml"), Getenv: env(nil)})
	if err != nil {
		t.Fatal(err)
	}
	if s.API.Addr != DefaultAddr || s.Temperature != 0.7 {
		t.Errorf("got %+v", s)
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name, file string
		env        map[string]string
		want       string
	}{
		{"malformed yaml", "temperature: [1,\n", nil, "read settings"},
		{"unknown key", "temprature: 1\n", nil, "temprature"},
		{"wrong type", "context_length: lots\n", nil, "context_length"},
		{"temperature range", "temperature: 3\n", nil, "temperature 3 is out of range"},
		{"top_p range", "", map[string]string{"PHI4MAC_TOP_P": "0"}, "top_p 0 is out of range"},
		{"remote without token", "api:\n  addr: 0.0.0.0:80\n", nil, "set api.token"},
		{"bad addr", "api:\n  addr: nonsense\n", nil, "not host:port"},
		{"wildcard origin", "api:\n  allowed_origins: ['*']\n", nil, "may not contain"},
		{"negative idle", "idle_unload: -1s\n", nil, "idle_unload -1s is negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "c.yaml")
			if err := os.WriteFile(path, []byte(tt.file), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := Load(LoadOptions{Path: path, Getenv: env(tt.env)})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.want)
			}
		})
	}
}

func TestValidateListsAllProblems(t *testing.T) {
	s := Defaults()
	s.Temperature = -1
	s.API.MaxQueue = 0
	err := s.Validate()
	var ve *ValidationError
	if !errors.As(err, &ve) || len(ve.Problems) != 2 {
		t.Fatalf("err = %v, want 2 problems", err)
	}
}

func TestSaveKeepsUnknownKeysAndRoundTrips(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "config.yaml")
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("gui:\n  theme: dark\napi:\n  extra: keep\ntemperature: 0.1\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	s := Defaults()
	s.Temperature = 1.1
	s.SystemPrompt = "Be brief."
	s.IdleUnload = 90 * time.Second
	if err := Save(path, s); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	for _, want := range []string{"theme: dark", "extra: keep", "temperature: 1.1", "Be brief."} {
		if !strings.Contains(string(b), want) {
			t.Errorf("saved file lacks %q:\n%s", want, b)
		}
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o640 {
		t.Errorf("mode = %v, want 0640 kept", fi.Mode().Perm())
	}
	// "api.extra" is unknown (a strict Load refuses it), "gui" is another part's section.
	if _, err := Load(LoadOptions{Path: path, Getenv: env(nil)}); err == nil || !strings.Contains(err.Error(), "api.extra") {
		t.Errorf("Load with an unknown key: %v", err)
	}
	clean := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(clean, []byte("gui:\n  theme: dark\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Save(clean, s); err != nil {
		t.Fatal(err)
	}
	got, err := Load(LoadOptions{Path: clean, Getenv: env(nil)})
	if err != nil {
		t.Fatal(err)
	}
	if got.Temperature != 1.1 || got.SystemPrompt != "Be brief." || got.IdleUnload != 90*time.Second {
		t.Errorf("round trip: %+v", got)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	entries = slices.DeleteFunc(entries, func(e os.DirEntry) bool { return e.Name() == filepath.Base(path)+".lock" })
	if len(entries) != 1 {
		t.Errorf("temporary files left behind: %v", entries)
	}
}

func TestSaveRefusesToClobberBrokenFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.yaml")
	orig := []byte("temperature: [oops\n")
	if err := os.WriteFile(path, orig, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Save(path, Defaults()); err == nil {
		t.Fatal("Save overwrote a file it could not parse")
	}
	if b, _ := os.ReadFile(path); string(b) != string(orig) {
		t.Errorf("file changed: %q", b)
	}
	bad := Defaults()
	bad.TopP = 5
	if err := Save(filepath.Join(t.TempDir(), "x.yaml"), bad); err == nil {
		t.Error("Save accepted invalid settings")
	}
}

func TestIsLoopbackHost(t *testing.T) {
	for host, want := range map[string]bool{
		"localhost": true, "LOCALHOST.": true, "app.localhost": true, "127.0.0.1": true,
		"127.9.9.9": true, "::1": true, "[::1]": true, "0.0.0.0": false, "example.com": false,
		"localhost.example.com": false, "10.0.0.1": false, "": false,
	} {
		if got := IsLoopbackHost(host); got != want {
			t.Errorf("IsLoopbackHost(%q) = %v, want %v", host, got, want)
		}
	}
}

func TestSet(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte("system_prompt: keep me\ngui:\n  theme: dark\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PHI4MAC_API_KEY", "from-env") // must not end up in the file
	if _, err := Set(path, "gui.theme", "light"); err == nil {
		t.Error("Set changed another part's section")
	}
	s, err := Set(path, "temperature", "0.25")
	if err != nil {
		t.Fatal(err)
	}
	if s.Temperature != 0.25 || s.SystemPrompt != "keep me" {
		t.Errorf("after set: %+v", s)
	}
	if _, err := Set(path, "api.allowed_origins", "http://localhost:3000,http://localhost:5173"); err != nil {
		t.Fatal(err)
	}
	got, err := Load(LoadOptions{Path: path, Getenv: env(nil)})
	if err != nil || got.Temperature != 0.25 || len(got.API.AllowedOrigins) != 2 || got.API.Token != "" {
		t.Errorf("reloaded: %+v %v", got, err)
	}
	for _, bad := range [][2]string{{"temprature", "1"}, {"temperature", "hot"}, {"top_p", "7"}} {
		if _, err := Set(path, bad[0], bad[1]); err == nil {
			t.Errorf("Set(%q, %q) accepted", bad[0], bad[1])
		}
	}
	if b, _ := os.ReadFile(path); strings.Contains(string(b), "from-env") || strings.Contains(string(b), "hot") || !strings.Contains(string(b), "theme: dark") {
		t.Errorf("file: %s", b)
	}
}

// FuzzLoad: any settings file gives settings or an error, never a panic,
// and whatever loads is valid.
func FuzzLoad(f *testing.F) {
	f.Add([]byte("temperature: 0.2\napi:\n  addr: 127.0.0.1:9000\n  allowed_origins: [http://localhost:3000]\n"))
	f.Add([]byte("idle_unload: 30s\ngui:\n  theme: dark\n"))
	f.Add([]byte("context_length: lots\n"))
	f.Add([]byte("{"))
	f.Fuzz(func(t *testing.T, b []byte) {
		path := filepath.Join(t.TempDir(), "c.yaml")
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := Load(LoadOptions{Path: path, Getenv: env(nil)})
		if err == nil {
			if verr := s.Validate(); verr != nil {
				t.Fatalf("Load returned invalid settings: %v", verr)
			}
		}
	})
}

// Two programs changing different settings at once (the menu-bar app and
// `phi4mac config set`, say) must both see their change kept.
func TestConcurrentSetKeepsEveryChange(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte("gui:\n  theme: dark\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	changes := [][2]string{{"temperature", "0.25"}, {"top_p", "0.5"}, {"max_tokens", "77"}, {"context_length", "1024"},
		{"system_prompt", "be kind"}, {"idle_unload", "9m"}, {"model", "acme/model"}, {"api.max_queue", "7"}}
	for round := range 5 {
		var wg sync.WaitGroup
		for _, c := range changes {
			wg.Go(func() {
				if _, err := Set(path, c[0], c[1]); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		s, err := Load(LoadOptions{Path: path, Getenv: env(nil)})
		if err != nil {
			t.Fatal(err)
		}
		if s.Temperature != 0.25 || s.TopP != 0.5 || s.MaxTokens != 77 || s.ContextLength != 1024 || s.SystemPrompt != "be kind" ||
			s.IdleUnload != 9*time.Minute || s.Model != "acme/model" || s.API.MaxQueue != 7 {
			t.Fatalf("round %d: a concurrent change was lost: %+v", round, s)
		}
		if b, _ := os.ReadFile(path); !strings.Contains(string(b), "theme: dark") {
			t.Fatalf("round %d: another section was lost: %s", round, b)
		}
		if err := os.WriteFile(path, []byte("gui:\n  theme: dark\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// Browser extensions (Page Assist: chrome-extension://ID), Tauri and
// Electron apps and VS Code webviews are common Ollama clients; their
// origins must be listable. Wildcards, "null" and things that are not an
// origin (paths, no host) are refused.
func TestAllowedOrigins(t *testing.T) {
	for origin, ok := range map[string]bool{
		"http://localhost:3000": true, "https://chat.example.com": true,
		"chrome-extension://jfgfiigpkhlkbnfnbobbkinehhfdhndo": true, "moz-extension://0f4c3a2b-1d2e-4f5a-9b8c-7d6e5f4a3b2c": true,
		"tauri://localhost": true, "app://obsidian.md": true, "vscode-webview://abc123": true,
		"*": false, "null": false, "http://*": false, "https://*.example.com": false, "localhost:3000": false,
		"http://localhost:3000/path": false, "http://": false, "file://": false, "http://a b": false,
	} {
		s := Defaults()
		s.API.AllowedOrigins = []string{origin}
		if err := s.Validate(); (err == nil) != ok {
			t.Errorf("origin %q: valid = %v, want %v (%v)", origin, err == nil, ok, err)
		}
	}
}

// The settings file may hold the API token: once it does, it is readable
// by its owner only, whatever mode the file had.
func TestSaveWithTokenIsPrivate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte("temperature: 0.5\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Set(path, "system_prompt", "hi"); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o644 {
		t.Errorf("mode changed without a token: %v", fi.Mode().Perm())
	}
	if _, err := Set(path, "api.token", "s3cret"); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm()&0o077 != 0 {
		t.Errorf("settings file holding the token has mode %v", fi.Mode().Perm())
	}
}

// Package config holds phi4mac's user settings: temperature, context length,
// system prompt, default model, idle unload, the local API's address and
// token, and where models live.
//
// Settings come, lowest precedence first, from built-in defaults, a YAML
// file in the OS config directory (os.UserConfigDir()/phi4mac/config.yaml),
// PHI4MAC_* environment variables and command-line flags. Each Load builds
// its own viper instance; there is no package-level state.
package config

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"github.com/spf13/viper"
)

// Settings is the complete, validated configuration.
type Settings struct {
	// Model is the default model: a path to a model folder or GGUF file, or
	// a name listed by `phi4mac models`. Empty means "the first one found".
	Model string `mapstructure:"model" yaml:"model"`
	// ModelsDir is phi4mac's own model store (where `pull` writes).
	ModelsDir string `mapstructure:"models_dir" yaml:"models_dir"`
	// Temperature is the default sampling temperature; 0 means greedy.
	Temperature float64 `mapstructure:"temperature" yaml:"temperature"`
	// TopP is the default nucleus-sampling mass, in (0, 1].
	TopP float64 `mapstructure:"top_p" yaml:"top_p"`
	// ContextLength caps the context window in tokens; 0 means the model's own.
	ContextLength int `mapstructure:"context_length" yaml:"context_length"`
	// MaxTokens caps one answer's length in tokens; 0 means up to the context.
	MaxTokens int `mapstructure:"max_tokens" yaml:"max_tokens"`
	// SystemPrompt is sent before every conversation; empty sends none.
	SystemPrompt string `mapstructure:"system_prompt" yaml:"system_prompt"`
	// IdleUnload is how long a loaded model stays in memory unused; 0 keeps it.
	IdleUnload time.Duration `mapstructure:"idle_unload" yaml:"idle_unload"`
	// API configures `phi4mac serve`.
	API API `mapstructure:"api" yaml:"api"`
}

// API holds the local HTTP server's settings.
type API struct {
	// Addr is the listen address, host:port. Loopback unless Token is set.
	Addr string `mapstructure:"addr" yaml:"addr"`
	// Token, when set, must be sent as "Authorization: Bearer <token>".
	Token string `mapstructure:"token" yaml:"token"`
	// AllowedOrigins are the browser origins allowed by CORS (exact match,
	// e.g. "http://localhost:3000"). Empty allows none; "*" is refused.
	AllowedOrigins []string `mapstructure:"allowed_origins" yaml:"allowed_origins"`
	// MaxBodyBytes caps a request body.
	MaxBodyBytes int64 `mapstructure:"max_body_bytes" yaml:"max_body_bytes"`
	// MaxPromptBytes caps the text of one prompt (all messages together).
	MaxPromptBytes int `mapstructure:"max_prompt_bytes" yaml:"max_prompt_bytes"`
	// MaxQueue caps the requests waiting for the model; more get 503.
	MaxQueue int `mapstructure:"max_queue" yaml:"max_queue"`
}

// DefaultAddr is where `phi4mac serve` listens unless told otherwise.
const DefaultAddr = "127.0.0.1:11435"

// Defaults returns the built-in settings.
func Defaults() Settings {
	return Settings{
		ModelsDir:   DefaultModelsDir(),
		Temperature: 0.7,
		TopP:        0.95,
		IdleUnload:  5 * time.Minute,
		API: API{
			Addr:           DefaultAddr,
			MaxBodyBytes:   8 << 20,
			MaxPromptBytes: 1 << 20,
			MaxQueue:       64,
		},
	}
}

// DefaultPath is the settings file: os.UserConfigDir()/phi4mac/config.yaml.
func DefaultPath() (string, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("find config dir: %w", err)
	}
	return filepath.Join(dir, "phi4mac", "config.yaml"), nil
}

// DefaultModelsDir is phi4mac's own model store: ~/Library/Application
// Support/phi4mac/models on macOS, $XDG_DATA_HOME/phi4mac/models (default
// ~/.local/share) elsewhere.
func DefaultModelsDir() string {
	home, _ := os.UserHomeDir()
	if runtime.GOOS == "darwin" {
		return filepath.Join(home, "Library", "Application Support", "phi4mac", "models")
	}
	if x := os.Getenv("XDG_DATA_HOME"); x != "" && filepath.IsAbs(x) {
		return filepath.Join(x, "phi4mac", "models")
	}
	return filepath.Join(home, ".local", "share", "phi4mac", "models")
}

// Flag names that Load binds when present in the flag set given to it.
var flagKeys = map[string]string{
	"model":        "model",
	"models-dir":   "models_dir",
	"temperature":  "temperature",
	"top-p":        "top_p",
	"ctx":          "context_length",
	"max-tokens":   "max_tokens",
	"system":       "system_prompt",
	"idle-unload":  "idle_unload",
	"addr":         "api.addr",
	"api-token":    "api.token",
	"allow-origin": "api.allowed_origins",
}

// LoadOptions says where Load looks.
type LoadOptions struct {
	// Path is the settings file; empty means DefaultPath. A missing file is
	// not an error; an unreadable or malformed one is.
	Path string
	// Flags, when non-nil, override file and environment for every flag in
	// it that the user set and that has a name in the table above.
	Flags *pflag.FlagSet
	// Getenv reads environment variables; nil means os.Getenv.
	Getenv func(string) string
}

// readFile returns a viper holding the defaults and the file at path (a
// missing file is not an error).
func readFile(path string) (*viper.Viper, error) {
	v := viper.New()
	d := Defaults()
	for k, val := range map[string]any{
		"model": d.Model, "models_dir": d.ModelsDir, "temperature": d.Temperature,
		"top_p": d.TopP, "context_length": d.ContextLength, "max_tokens": d.MaxTokens,
		"system_prompt": d.SystemPrompt, "idle_unload": d.IdleUnload,
		"api.addr": d.API.Addr, "api.token": d.API.Token, "api.allowed_origins": d.API.AllowedOrigins,
		"api.max_body_bytes": d.API.MaxBodyBytes, "api.max_prompt_bytes": d.API.MaxPromptBytes,
		"api.max_queue": d.API.MaxQueue,
	} {
		v.SetDefault(k, val)
	}

	v.SetConfigFile(path)
	v.SetConfigType("yaml")
	if err := v.ReadInConfig(); err != nil {
		var nf viper.ConfigFileNotFoundError
		if !errors.As(err, &nf) && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("read settings %s: %w", path, err)
		}
	}

	return v, nil
}

// Sections are top-level keys of the settings file that belong to other
// parts of phi4mac (the menu-bar app, document Q&A); Load ignores them and
// Save keeps them.
var Sections = []string{"gui", "docs", "store"}

// decode unmarshals v into s, rejecting unknown keys (typos) outside Sections.
func decode(v *viper.Viper, s *Settings) error {
	known := map[string]bool{}
	for _, k := range []string{"model", "models_dir", "temperature", "top_p", "context_length", "max_tokens",
		"system_prompt", "idle_unload", "api.addr", "api.token", "api.allowed_origins", "api.max_body_bytes",
		"api.max_prompt_bytes", "api.max_queue"} {
		known[k] = true
	}
	var unknown []string
	for _, k := range v.AllKeys() {
		top, _, _ := strings.Cut(k, ".")
		if !known[k] && !slices.Contains(Sections, top) {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		return fmt.Errorf("unknown setting(s) %s (known: %s)", strings.Join(unknown, ", "), strings.Join(slices.Sorted(maps.Keys(known)), ", "))
	}
	return v.Unmarshal(s)
}

// Load reads defaults, the settings file, PHI4MAC_* environment variables
// and flags, in that order of precedence, and validates the result.
// Environment names are the keys upper-cased with "." → "_", e.g.
// PHI4MAC_TEMPERATURE, PHI4MAC_API_ADDR; PHI4MAC_API_KEY also sets api.token.
func Load(opts LoadOptions) (Settings, error) {
	path := opts.Path
	if path == "" {
		p, err := DefaultPath()
		if err != nil {
			return Settings{}, err
		}
		path = p
	}
	getenv := opts.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}

	v, err := readFile(path)
	if err != nil {
		return Settings{}, err
	}

	// Environment: read through getenv (so tests need no process env) and
	// merged over the file; flags, bound below, still take precedence.
	envMap := map[string]any{}
	setEnv := func(key, val string) {
		var v any = val
		if key == "api.allowed_origins" {
			v = splitList(val)
		}
		m := envMap
		parts := strings.Split(key, ".")
		for _, p := range parts[:len(parts)-1] {
			sub, ok := m[p].(map[string]any)
			if !ok {
				sub = map[string]any{}
				m[p] = sub
			}
			m = sub
		}
		m[parts[len(parts)-1]] = v
	}
	if val := getenv("PHI4MAC_API_KEY"); val != "" {
		setEnv("api.token", val)
	}
	for _, key := range v.AllKeys() {
		name := "PHI4MAC_" + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
		if val := getenv(name); val != "" {
			setEnv(key, val)
		}
	}
	if err := v.MergeConfigMap(envMap); err != nil {
		return Settings{}, fmt.Errorf("read PHI4MAC_* environment: %w", err)
	}

	if opts.Flags != nil {
		var bindErr error
		opts.Flags.VisitAll(func(f *pflag.Flag) {
			if key, ok := flagKeys[f.Name]; ok && f.Changed {
				if err := v.BindPFlag(key, f); err != nil && bindErr == nil {
					bindErr = err
				}
			}
		})
		if bindErr != nil {
			return Settings{}, fmt.Errorf("bind flags: %w", bindErr)
		}
	}

	var s Settings
	if err := decode(v, &s); err != nil {
		return Settings{}, fmt.Errorf("settings (%s, PHI4MAC_* environment, flags): %w", path, err)
	}
	s.ModelsDir = expandHome(s.ModelsDir)
	s.Model = expandHome(s.Model)
	if err := s.Validate(); err != nil {
		return Settings{}, err
	}
	return s, nil
}

func splitList(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' })
}

func expandHome(p string) string {
	if p == "~" || strings.HasPrefix(p, "~/") {
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, p[1:])
		}
	}
	return p
}

// isOrigin reports whether o is a browser origin: scheme://host[:port],
// any scheme (http, https, chrome-extension, tauri, app, ...), nothing else.
func isOrigin(o string) bool {
	u, err := url.Parse(o)
	return err == nil && u.Scheme != "" && u.Host != "" && u.User == nil && (u.Path == "" || u.Path == "/") &&
		u.RawQuery == "" && u.Fragment == "" && !u.ForceQuery && !strings.HasSuffix(o, "#")
}

// Validate reports every setting out of range, one per line.
func (s Settings) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if s.Temperature < 0 || s.Temperature > 2 {
		bad("temperature %g is out of range: use 0 (greedy) to 2", s.Temperature)
	}
	if s.TopP <= 0 || s.TopP > 1 {
		bad("top_p %g is out of range: use a value above 0 and at most 1", s.TopP)
	}
	if s.ContextLength < 0 || s.ContextLength > 1<<20 {
		bad("context_length %d is out of range: use 0 (the model's own) or a positive token count", s.ContextLength)
	}
	if s.MaxTokens < 0 {
		bad("max_tokens %d is negative: use 0 for no limit", s.MaxTokens)
	}
	if s.IdleUnload < 0 {
		bad("idle_unload %s is negative: use 0 to keep the model loaded", s.IdleUnload)
	}
	if s.ModelsDir == "" {
		bad("models_dir is empty")
	}
	host, port, err := net.SplitHostPort(s.API.Addr)
	switch {
	case err != nil:
		bad("api.addr %q is not host:port (e.g. %s): %v", s.API.Addr, DefaultAddr, err)
	case port == "":
		bad("api.addr %q has no port", s.API.Addr)
	case !IsLoopbackHost(host) && s.API.Token == "":
		bad("api.addr %q listens beyond this machine: set api.token (PHI4MAC_API_KEY) first, or use 127.0.0.1", s.API.Addr)
	}
	for _, o := range s.API.AllowedOrigins {
		if o == "*" || o == "null" || strings.Contains(o, "*") {
			bad("api.allowed_origins may not contain %q: list exact origins such as http://localhost:3000", o)
		} else if !isOrigin(o) {
			bad("api.allowed_origins entry %q is not an origin (scheme://host[:port], e.g. http://localhost:3000 or chrome-extension://ID)", o)
		}
	}
	if s.API.MaxBodyBytes < 1024 {
		bad("api.max_body_bytes %d is too small: use at least 1024", s.API.MaxBodyBytes)
	}
	if s.API.MaxPromptBytes < 1 {
		bad("api.max_prompt_bytes %d must be positive", s.API.MaxPromptBytes)
	}
	if s.API.MaxQueue < 1 {
		bad("api.max_queue %d must be positive", s.API.MaxQueue)
	}
	if len(errs) > 0 {
		return &ValidationError{Problems: errs}
	}
	return nil
}

// ValidationError lists every invalid setting found.
type ValidationError struct {
	Problems []error
}

// Error lists the problems, one per line.
func (e *ValidationError) Error() string {
	msgs := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		msgs[i] = p.Error()
	}
	return "invalid settings:\n  " + strings.Join(msgs, "\n  ")
}

// IsLoopbackHost reports whether host (a name or IP, without port) can only
// reach this machine: "localhost", a "*.localhost" name, or a loopback IP.
func IsLoopbackHost(host string) bool {
	host = strings.TrimSuffix(strings.ToLower(strings.Trim(host, "[]")), ".")
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Package models finds the models on this machine: phi4mac's own store
// (what `phi4mac pull` writes), GGUF files in Ollama's store (manifests →
// blobs) and in LM Studio's folders. Other applications' files are used in
// place, never copied, and never deleted by phi4mac.
package models

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/phi4mac/phi4mac/app/llm"
	"github.com/phi4mac/phi4mac/engine/weights"
)

// Sources of models, as reported in llm.Info.Source.
const (
	SourceStore    = "phi4mac"
	SourceOllama   = "ollama"
	SourceLMStudio = "lmstudio"
	SourcePath     = "path"
)

// Catalog lists and resolves local models.
type Catalog struct {
	// Dir is phi4mac's own store.
	Dir string
	// OllamaDir is Ollama's models folder (holding manifests/ and blobs/);
	// empty skips Ollama.
	OllamaDir string
	// LMStudioDirs are LM Studio's model folders; missing ones are skipped.
	LMStudioDirs []string
	// Default, when set, is the name or path listed first.
	Default string
	// Families, when set, limits the list to these architectures
	// (general.architecture / model_type), e.g. what the engine runs.
	Families []string

	mu    sync.Mutex
	cache map[string]cachedInfo // GGUF descriptions by path
}

type cachedInfo struct {
	size int64
	mod  time.Time
	info llm.Info
}

// describe is Describe with GGUF headers cached by path, size and
// modification time, so listing a store (done for every API request) does
// not re-read every file.
func (c *Catalog) describe(path string) (llm.Info, error) {
	fi, err := os.Stat(path)
	if err != nil || fi.IsDir() {
		return Describe(path)
	}
	c.mu.Lock()
	e, ok := c.cache[path]
	c.mu.Unlock()
	if ok && e.size == fi.Size() && e.mod.Equal(fi.ModTime()) {
		return e.info, nil
	}
	info, err := Describe(path)
	if err != nil {
		return info, err
	}
	c.mu.Lock()
	if c.cache == nil {
		c.cache = map[string]cachedInfo{}
	}
	c.cache[path] = cachedInfo{size: fi.Size(), mod: fi.ModTime(), info: info}
	c.mu.Unlock()
	return info, nil
}

// DefaultCatalog returns a catalogue over dir and the usual places of
// Ollama ($OLLAMA_MODELS or ~/.ollama/models) and LM Studio
// (~/.lmstudio/models, ~/.cache/lm-studio/models), listing the
// architectures phi4mac's engine runs (phi3: the Phi-4 family; llama).
func DefaultCatalog(dir, defaultModel string) *Catalog {
	home, _ := os.UserHomeDir()
	ollama := os.Getenv("OLLAMA_MODELS")
	if ollama == "" && home != "" {
		ollama = filepath.Join(home, ".ollama", "models")
	}
	c := &Catalog{Dir: dir, OllamaDir: ollama, Default: defaultModel, Families: []string{"phi3", "llama"}}
	if home != "" {
		c.LMStudioDirs = []string{filepath.Join(home, ".lmstudio", "models"), filepath.Join(home, ".cache", "lm-studio", "models")}
	}
	return c
}

// List returns every model found, the default first, then phi4mac's store,
// Ollama's and LM Studio's, each sorted by name. Unreadable entries are
// skipped; only a failure to read an existing store is an error.
func (c *Catalog) List(ctx context.Context) ([]llm.Info, error) {
	var out []llm.Info
	add := func(list []llm.Info, err error) error {
		if err != nil {
			return err
		}
		if len(c.Families) > 0 {
			list = slices.DeleteFunc(list, func(m llm.Info) bool { return !slices.Contains(c.Families, m.Family) })
		}
		slices.SortFunc(list, func(a, b llm.Info) int { return cmp.Compare(a.Name, b.Name) })
		out = append(out, list...)
		return nil
	}
	if err := add(c.storeModels(ctx)); err != nil {
		return nil, err
	}
	if err := add(c.ollamaModels(ctx)); err != nil {
		return nil, err
	}
	for _, d := range c.LMStudioDirs {
		if err := add(c.scanDir(ctx, d, SourceLMStudio, "lmstudio:")); err != nil {
			return nil, err
		}
	}
	if c.Default != "" {
		i := slices.IndexFunc(out, func(m llm.Info) bool { return m.Name == c.Default || m.Path == c.Default })
		switch {
		case i > 0:
			m := out[i]
			out = append([]llm.Info{m}, slices.Delete(out, i, i+1)...)
		case i < 0:
			if info, err := c.describe(c.Default); err == nil {
				out = append([]llm.Info{info}, out...)
			}
		}
	}
	return out, nil
}

// Find resolves name: a listed name, or a path to a model file or folder.
func (c *Catalog) Find(ctx context.Context, name string) (llm.Info, error) {
	list, err := c.List(ctx)
	if err != nil {
		return llm.Info{}, err
	}
	if name == "" {
		if len(list) == 0 {
			return llm.Info{}, fmt.Errorf("%w: no models found (run `phi4mac pull microsoft/phi-4`)", llm.ErrUnknownModel)
		}
		return list[0], nil
	}
	for _, m := range list {
		if m.Name == name || m.Name == strings.TrimSuffix(name, ":latest") || strings.TrimSuffix(m.Name, ":latest") == name {
			return m, nil
		}
	}
	if _, err := os.Stat(name); err == nil {
		return c.describe(name)
	}
	return llm.Info{}, fmt.Errorf("%w: %q (see `phi4mac models`)", llm.ErrUnknownModel, name)
}

// Remove deletes a model from phi4mac's own store. Models of Ollama or LM
// Studio are refused: they belong to those applications.
func (c *Catalog) Remove(ctx context.Context, name string) (llm.Info, error) {
	if strings.TrimSpace(name) == "" {
		// Find("") is the default model; never delete it by accident.
		return llm.Info{}, errors.New("remove: no model named (see `phi4mac models`)")
	}
	m, err := c.Find(ctx, name)
	if err != nil {
		return m, err
	}
	switch m.Source {
	case SourceStore:
	case SourceOllama:
		return m, fmt.Errorf("%s belongs to Ollama: remove it with `ollama rm %s`", m.Name, strings.TrimPrefix(m.Name, "ollama:"))
	default:
		return m, fmt.Errorf("%s is not in phi4mac's store (%s); phi4mac deletes only models it downloaded", m.Name, m.Path)
	}
	rel, err := filepath.Rel(c.Dir, m.Path)
	if err != nil || rel == "." || strings.HasPrefix(rel, "..") {
		return m, fmt.Errorf("%s is outside the store %s; not deleting", m.Path, c.Dir)
	}
	for _, p := range append(splitParts(m.Path), m.Path) {
		if err := os.RemoveAll(p); err != nil {
			return m, fmt.Errorf("remove %s: %w", m.Name, err)
		}
	}
	// Tidy now-empty parent folders up to the store root.
	for d := filepath.Dir(m.Path); d != filepath.Clean(c.Dir); d = filepath.Dir(d) {
		if os.Remove(d) != nil {
			break
		}
	}
	return m, nil
}

func (c *Catalog) storeModels(ctx context.Context) ([]llm.Info, error) {
	return c.scanDir(ctx, c.Dir, SourceStore, "")
}

// scanDir finds Hugging Face folders (config.json + safetensors) and GGUF
// files under root (up to four levels deep), named by their path relative
// to root (without ".gguf"), with prefix.
func (c *Catalog) scanDir(ctx context.Context, root, source, prefix string) ([]llm.Info, error) {
	if _, err := os.Stat(root); errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	var out []llm.Info
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if path == root {
				return err
			}
			return nil // unreadable entry: skip
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		depth := strings.Count(rel, string(filepath.Separator))
		if d.IsDir() {
			if strings.HasPrefix(d.Name(), ".") && path != root {
				return filepath.SkipDir
			}
			if isHFFolder(path) {
				if info, err := c.describe(path); err == nil {
					info.Name, info.Source = prefix+filepath.ToSlash(rel), source
					out = append(out, info)
				}
				return filepath.SkipDir
			}
			if depth >= 4 {
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasSuffix(strings.ToLower(d.Name()), ".gguf") && !isExtraShard(d.Name()) && !isProjector(d.Name()) {
			if info, err := c.describe(path); err == nil {
				info.Name, info.Source = prefix+strings.TrimSuffix(filepath.ToSlash(rel), filepath.Ext(rel)), source
				out = append(out, info)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("scan %s: %w", root, err)
	}
	return out, nil
}

func isHFFolder(dir string) bool {
	if _, err := os.Stat(filepath.Join(dir, "config.json")); err != nil {
		return false
	}
	for _, f := range []string{"model.safetensors", "model.safetensors.index.json"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			return true
		}
	}
	return false
}

// isExtraShard reports split-GGUF shards after the first ("-00002-of-00003").
func isExtraShard(name string) bool {
	i := strings.LastIndex(name, "-of-")
	return i > 6 && name[i-6] == '-' && name[i-5:i] != "00001"
}

// splitParts returns the other parts of the split GGUF whose first part is
// path ("x-00001-of-00003.gguf": x-00002-of-00003.gguf, ...), and the
// unfinished downloads (".partial") of every part; nil for other files.
func splitParts(path string) []string {
	base := filepath.Base(path)
	i := strings.LastIndex(base, "-of-")
	if !strings.HasSuffix(strings.ToLower(base), ".gguf") || i <= 6 || base[i-6] != '-' {
		return []string{path + ".partial"}
	}
	prefix, suffix := base[:i-5], base[i:] // "x-", "-of-00003.gguf"
	var out []string
	entries, _ := os.ReadDir(filepath.Dir(path))
	for _, e := range entries {
		n := strings.TrimSuffix(e.Name(), ".partial")
		if n == e.Name() && n == base {
			continue
		}
		if len(n) == len(base) && strings.HasPrefix(n, prefix) && strings.HasSuffix(n, suffix) &&
			strings.Trim(n[i-5:i], "0123456789") == "" {
			out = append(out, filepath.Join(filepath.Dir(path), e.Name()))
		}
	}
	return out
}

func isProjector(name string) bool {
	return strings.HasPrefix(strings.ToLower(name), "mmproj")
}

// Describe reads what it can about the model at path (a GGUF file or a
// Hugging Face folder) without loading it.
func Describe(path string) (llm.Info, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return llm.Info{}, fmt.Errorf("%w: %v", llm.ErrUnknownModel, err)
	}
	info := llm.Info{Name: strings.TrimSuffix(filepath.Base(path), ".gguf"), Path: path, Modified: fi.ModTime(), Source: SourcePath}
	if fi.IsDir() {
		return describeHF(path, info)
	}
	return describeGGUF(path, info, fi.Size())
}

func describeHF(dir string, info llm.Info) (llm.Info, error) {
	b, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		return info, fmt.Errorf("%w: %s is not a model folder: %v", llm.ErrUnknownModel, dir, err)
	}
	var cfg struct {
		ModelType  string `json:"model_type"`
		TorchDType string `json:"torch_dtype"`
		MaxPos     int    `json:"max_position_embeddings"`
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		return info, fmt.Errorf("%s/config.json: %w", dir, err)
	}
	info.Format, info.Family, info.ContextLength = "safetensors", cfg.ModelType, cfg.MaxPos
	info.Quantization = strings.ToUpper(strings.Replace(cfg.TorchDType, "bfloat16", "bf16", 1))
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if fi, err := e.Info(); err == nil && !e.IsDir() {
			info.Size += fi.Size()
			if fi.ModTime().After(info.Modified) {
				info.Modified = fi.ModTime()
			}
		}
	}
	return info, nil
}

func describeGGUF(path string, info llm.Info, size int64) (llm.Info, error) {
	g, err := weights.OpenGGUF(path)
	if err != nil {
		return info, fmt.Errorf("%s: %w", path, err)
	}
	defer g.Close()
	info.Format, info.Size = "gguf", size
	if a, ok := g.String("general.architecture"); ok {
		info.Family = a
		if n, ok := g.Uint(a + ".context_length"); ok {
			info.ContextLength = int(n)
		}
	}
	if s, ok := g.String("general.size_label"); ok {
		info.ParameterSize = s
	}
	if ft, ok := g.Uint("general.file_type"); ok {
		info.Quantization = fileTypeName(ft)
	}
	return info, nil
}

// fileTypeName names llama.cpp's general.file_type values.
func fileTypeName(ft uint64) string {
	names := map[uint64]string{0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1",
		10: "Q2_K", 11: "Q3_K_S", 12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M", 16: "Q5_K_S",
		17: "Q5_K_M", 18: "Q6_K", 19: "IQ2_XXS", 20: "IQ2_XS", 32: "BF16"}
	if n, ok := names[ft]; ok {
		return n
	}
	return fmt.Sprintf("file_type %d", ft)
}

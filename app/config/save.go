package config

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Save writes s to path (empty: DefaultPath) without losing anything the
// user put there: keys phi4mac does not know are kept, a file that does not
// parse is left untouched (an error is returned instead), and the new file
// replaces the old one atomically (written to a temporary file in the same
// directory, synced, then renamed), so a crash leaves either the old or the
// new file, never half of one. Invalid settings are refused. Save and Set
// hold a lock on path+".lock" meanwhile, so concurrent changes from several
// processes are applied one after another.
func Save(path string, s Settings) error {
	if err := s.Validate(); err != nil {
		return err
	}
	if path == "" {
		p, err := DefaultPath()
		if err != nil {
			return err
		}
		path = p
	}
	unlock, err := lockFile(path)
	if err != nil {
		return fmt.Errorf("save settings: %w", err)
	}
	defer unlock()
	return save(path, s)
}

// save is Save with the lock held.
func save(path string, s Settings) error {
	doc := map[string]any{}
	mode := os.FileMode(0o600)
	if old, err := os.ReadFile(path); err == nil {
		if err := yaml.Unmarshal(old, &doc); err != nil {
			return fmt.Errorf("save settings: %s does not parse, not overwriting it: %w", path, err)
		}
		if doc == nil {
			doc = map[string]any{}
		}
		if fi, err := os.Stat(path); err == nil {
			mode = fi.Mode().Perm()
		}
	} else if !os.IsNotExist(err) {
		return fmt.Errorf("save settings: %w", err)
	}

	var known map[string]any
	b, err := yaml.Marshal(s)
	if err != nil {
		return fmt.Errorf("save settings: %w", err)
	}
	if err := yaml.Unmarshal(b, &known); err != nil {
		return fmt.Errorf("save settings: %w", err)
	}
	merge(doc, known)

	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return fmt.Errorf("save settings: %w", err)
	}
	if err := enc.Close(); err != nil {
		return fmt.Errorf("save settings: %w", err)
	}
	if api, _ := doc["api"].(map[string]any); api != nil && api["token"] != nil && api["token"] != "" {
		mode &^= 0o077 // the file holds a secret: owner only
	}
	return WriteFileAtomic(path, buf.Bytes(), mode)
}

// merge copies src into dst, descending into nested maps so that unknown
// keys inside known sections survive.
func merge(dst, src map[string]any) {
	for k, v := range src {
		if sm, ok := v.(map[string]any); ok {
			if dm, ok := dst[k].(map[string]any); ok {
				merge(dm, sm)
				continue
			}
		}
		dst[k] = v
	}
}

// WriteFileAtomic writes data to a temporary file beside path, syncs it and
// renames it over path, creating the directory if needed.
func WriteFileAtomic(path string, data []byte, mode os.FileMode) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Chmod(mode); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	ok = true
	return nil
}

// Keys lists the settings' names as used in the file and by Set.
func Keys() []string {
	v, _ := readFile(filepath.Join(os.TempDir(), "phi4mac-no-such-settings-file.yaml"))
	keys := v.AllKeys()
	slices.Sort(keys)
	return keys
}

// Set changes one setting in the file at path (empty: DefaultPath) and
// saves it with Save. Only the file and the defaults are read, so values
// that come from the environment or flags are never written into the file.
func Set(path, key, value string) (Settings, error) {
	if path == "" {
		p, err := DefaultPath()
		if err != nil {
			return Settings{}, err
		}
		path = p
	}
	unlock, err := lockFile(path)
	if err != nil {
		return Settings{}, fmt.Errorf("set %s: %w", key, err)
	}
	defer unlock()
	v, err := readFile(path)
	if err != nil {
		return Settings{}, err
	}
	if !slices.Contains(Keys(), key) {
		return Settings{}, fmt.Errorf("unknown setting %q; settings are: %s", key, strings.Join(Keys(), ", "))
	}
	if key == "api.allowed_origins" {
		v.Set(key, splitList(value))
	} else {
		v.Set(key, value)
	}
	var s Settings
	if err := decode(v, &s); err != nil {
		return Settings{}, fmt.Errorf("set %s: %w", key, err)
	}
	s.ModelsDir = expandHome(s.ModelsDir)
	s.Model = expandHome(s.Model)
	if err := s.Validate(); err != nil {
		return Settings{}, err
	}
	if err := save(path, s); err != nil {
		return Settings{}, err
	}
	return s, nil
}

package models

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/phi4mac/phi4mac/app/llm"
)

// ollamaManifest is the part of an Ollama (OCI-style) manifest phi4mac reads.
type ollamaManifest struct {
	SchemaVersion int `json:"schemaVersion"`
	Layers        []struct {
		MediaType string `json:"mediaType"`
		Digest    string `json:"digest"`
		Size      int64  `json:"size"`
	} `json:"layers"`
}

const ollamaModelLayer = "application/vnd.ollama.image.model"

// ollamaModels reads manifests/<host>/<namespace>/<model>/<tag> and maps each
// model layer to its blob (blobs/sha256-<hex>, or the older sha256:<hex>).
// Models from the default registry and namespace are named "ollama:<model>:<tag>",
// others "ollama:<host>/<namespace>/<model>:<tag>".
func (c *Catalog) ollamaModels(ctx context.Context) ([]llm.Info, error) {
	if c.OllamaDir == "" {
		return nil, nil
	}
	root := filepath.Join(c.OllamaDir, "manifests")
	if _, err := os.Stat(root); errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	var out []llm.Info
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		parts := strings.Split(filepath.ToSlash(rel), "/")
		if len(parts) != 4 {
			return nil
		}
		info, ok := c.ollamaModel(path, parts)
		if ok {
			out = append(out, info)
		}
		return nil
	})
	return out, err
}

// modelBlobDigest returns the hex SHA-256 of a manifest's model layer.
func modelBlobDigest(manifest []byte) (string, bool) {
	var m ollamaManifest
	if len(manifest) > 1<<20 || json.Unmarshal(manifest, &m) != nil {
		return "", false
	}
	for _, l := range m.Layers {
		if l.MediaType != ollamaModelLayer {
			continue
		}
		hexDigest, ok := strings.CutPrefix(l.Digest, "sha256:")
		if !ok || len(hexDigest) != 64 || strings.Trim(hexDigest, "0123456789abcdef") != "" {
			return "", false
		}
		return hexDigest, true
	}
	return "", false
}

func (c *Catalog) ollamaModel(manifest string, parts []string) (llm.Info, bool) {
	b, err := os.ReadFile(manifest)
	if err != nil {
		return llm.Info{}, false
	}
	hexDigest, ok := modelBlobDigest(b)
	if !ok {
		return llm.Info{}, false
	}
	blob := filepath.Join(c.OllamaDir, "blobs", "sha256-"+hexDigest)
	if _, err := os.Stat(blob); err != nil {
		blob = filepath.Join(c.OllamaDir, "blobs", "sha256:"+hexDigest)
	}
	info, err := c.describe(blob)
	if err != nil {
		return llm.Info{}, false
	}
	host, ns, model, tag := parts[0], parts[1], parts[2], parts[3]
	name := model + ":" + tag
	if host != "registry.ollama.ai" || ns != "library" {
		name = host + "/" + ns + "/" + name
	}
	info.Name, info.Source, info.Digest = "ollama:"+name, SourceOllama, hexDigest
	if fi, err := os.Stat(manifest); err == nil {
		info.Modified = fi.ModTime()
	}
	return info, true
}

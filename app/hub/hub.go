// Package hub downloads models from the Hugging Face Hub (`phi4mac pull`):
// a whole safetensors repository (config, tokenizer, every shard), or one
// GGUF quantisation of a GGUF repository. Downloads resume with HTTP Range
// after an interruption or a dropped connection, are verified against the
// SHA-256 the Hub publishes for LFS files, and check free disk space first.
package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// DefaultEndpoint is the Hub's address; HF_ENDPOINT overrides it.
const DefaultEndpoint = "https://huggingface.co"

// Client talks to the Hub. The zero value is not usable; use FromEnv or
// fill Endpoint.
type Client struct {
	// Endpoint is the Hub's base URL.
	Endpoint string
	// Token, when set, is sent to the Hub (not to the CDN it redirects to).
	Token string
	// HTTP is the client used; nil means a default one.
	HTTP *http.Client
	// Retries is how many times a file download resumes after a network
	// error (default 5).
	Retries int
	// RetryWait is the pause before the first retry, doubled each time
	// (default 1 s).
	RetryWait time.Duration
	// Progress, when set, is told about each file's progress.
	Progress Progress
	// FreeSpace reports the bytes available under dir; nil uses the OS.
	FreeSpace func(dir string) (int64, error)
}

// FromEnv returns a Client configured from HF_ENDPOINT and HF_TOKEN (or
// HUGGING_FACE_HUB_TOKEN).
func FromEnv() *Client {
	c := &Client{Endpoint: os.Getenv("HF_ENDPOINT"), Token: os.Getenv("HF_TOKEN")}
	if c.Endpoint == "" {
		c.Endpoint = DefaultEndpoint
	}
	if c.Token == "" {
		c.Token = os.Getenv("HUGGING_FACE_HUB_TOKEN")
	}
	return c
}

// Ref names what to pull: a repository at a revision, optionally narrowed
// to a GGUF quantisation or one file.
type Ref struct {
	Repo     string // owner/name
	Revision string // branch, tag or commit (default "main")
	Quant    string // e.g. "Q4_K_M": the GGUF file(s) of that quantisation
	File     string // a path inside the repository
}

var repoPart = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// ParseRef parses "owner/name[@rev]", "owner/name[@rev]:QUANT" or
// "owner/name[@rev]/path/to/file.gguf".
func ParseRef(s string) (Ref, error) {
	s = strings.TrimSpace(strings.TrimPrefix(strings.TrimPrefix(s, "https://huggingface.co/"), "hf.co/"))
	var r Ref
	parts := strings.SplitN(s, "/", 3)
	if len(parts) < 2 {
		return r, fmt.Errorf("%q is not a Hugging Face repository: use owner/name, e.g. microsoft/phi-4", s)
	}
	owner, name := parts[0], parts[1]
	if len(parts) == 3 {
		r.File = parts[2]
	} else if i := strings.LastIndexByte(name, ':'); i >= 0 {
		name, r.Quant = name[:i], name[i+1:]
		if r.Quant == "" {
			return r, fmt.Errorf("%q: empty quantisation after ':'", s)
		}
	}
	if i := strings.IndexByte(name, '@'); i >= 0 {
		name, r.Revision = name[:i], name[i+1:]
	}
	if r.Revision == "" {
		r.Revision = "main"
	}
	if !repoPart.MatchString(owner) || !repoPart.MatchString(name) || strings.Contains(owner+name, "..") {
		return r, fmt.Errorf("%q is not a valid repository name (owner/name)", s)
	}
	if r.File != "" && !validRepoPath(r.File) {
		return r, fmt.Errorf("%q is not a valid file path in the repository", r.File)
	}
	if strings.ContainsAny(r.Revision, " ?#") || strings.Contains(r.Revision, "..") {
		return r, fmt.Errorf("%q is not a valid revision", r.Revision)
	}
	r.Repo = owner + "/" + name
	return r, nil
}

// validRepoPath rejects paths that could escape the destination folder,
// and names with control characters or invalid UTF-8 (they are printed in
// progress bars, where they could act as terminal escape sequences).
func validRepoPath(p string) bool {
	if p == "" || strings.HasPrefix(p, "/") || strings.Contains(p, "\\") || !utf8.ValidString(p) ||
		strings.ContainsFunc(p, func(r rune) bool { return r < 0x20 || (r >= 0x7f && r < 0xa0) }) {
		return false
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return false
		}
	}
	return true
}

// File is one file of a repository.
type File struct {
	Path   string // path inside the repository
	Size   int64  // bytes; -1 when unknown
	SHA256 string // hex, for LFS files; "" when unknown
}

// repoInfo is the part of /api/models/{repo}/revision/{rev}?blobs=true used.
type repoInfo struct {
	ID       string `json:"id"`
	SHA      string `json:"sha"`
	Siblings []struct {
		RFilename string `json:"rfilename"`
		Size      *int64 `json:"size"`
		LFS       *struct {
			SHA256 string `json:"sha256"`
			Size   int64  `json:"size"`
		} `json:"lfs"`
	} `json:"siblings"`
}

// ErrNotFound: the repository, revision or file does not exist (or is
// private or gated and no valid token was given).
var ErrNotFound = errors.New("not found on the Hugging Face Hub")

func (c *Client) httpClient() *http.Client {
	base := c.HTTP
	if base == nil {
		base = &http.Client{}
	}
	cl := *base
	// Send the token to the Hub only: drop it when a redirect leaves the
	// Hub's host (the CDN needs no token; its URL is signed).
	cl.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) >= 10 {
			return errors.New("too many redirects")
		}
		if req.URL.Host != via[0].URL.Host {
			req.Header.Del("Authorization")
		}
		return nil
	}
	return &cl
}

func (c *Client) newRequest(ctx context.Context, method, u string) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return nil, err
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	req.Header.Set("User-Agent", "phi4mac")
	return req, nil
}

// Files lists the repository's files at ref.Revision.
func (c *Client) Files(ctx context.Context, ref Ref) ([]File, error) {
	u := strings.TrimSuffix(c.Endpoint, "/") + "/api/models/" + ref.Repo + "/revision/" + url.PathEscape(ref.Revision) + "?blobs=true"
	req, err := c.newRequest(ctx, http.MethodGet, u)
	if err != nil {
		return nil, err
	}
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", ref.Repo, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusUnauthorized:
		hint := ""
		if c.Token == "" {
			hint = " (if it is private or gated, set HF_TOKEN)"
		}
		return nil, fmt.Errorf("%s@%s: %w%s", ref.Repo, ref.Revision, ErrNotFound, hint)
	case resp.StatusCode == http.StatusForbidden:
		return nil, fmt.Errorf("%s: access denied: accept the model's licence on huggingface.co and set HF_TOKEN", ref.Repo)
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("list %s: %s", ref.Repo, resp.Status)
	}
	var info repoInfo
	if err := json.NewDecoder(io.LimitReader(resp.Body, 32<<20)).Decode(&info); err != nil {
		return nil, fmt.Errorf("list %s: bad answer from the Hub: %w", ref.Repo, err)
	}
	var files []File
	for _, s := range info.Siblings {
		if !validRepoPath(s.RFilename) {
			continue // never write outside the destination
		}
		f := File{Path: s.RFilename, Size: -1}
		if s.Size != nil {
			f.Size = *s.Size
		}
		if s.LFS != nil {
			f.SHA256, f.Size = strings.ToLower(s.LFS.SHA256), s.LFS.Size
		}
		files = append(files, f)
	}
	return files, nil
}

// hfFiles are the non-weight files a safetensors model needs.
var hfFiles = []string{"config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
	"vocab.json", "merges.txt", "added_tokens.json", "special_tokens_map.json", "model.safetensors.index.json",
	"tokenizer.model", "LICENSE", "README.md"}

var shardRe = regexp.MustCompile(`-(\d{5})-of-(\d{5})\.gguf$`)

// Select picks the files ref asks for from a repository listing.
func Select(ref Ref, files []File) ([]File, error) {
	var out []File
	var ggufs []File
	for _, f := range files {
		if strings.HasSuffix(strings.ToLower(f.Path), ".gguf") {
			ggufs = append(ggufs, f)
		}
	}
	switch {
	case ref.File != "":
		i := slices.IndexFunc(files, func(f File) bool { return f.Path == ref.File })
		if i < 0 {
			return nil, fmt.Errorf("%s has no file %s", ref.Repo, ref.File)
		}
		out = append(out, files[i])
		if m := shardRe.FindStringSubmatch(ref.File); m != nil { // a split GGUF: take every part
			prefix := strings.TrimSuffix(ref.File, m[0])
			out = out[:0]
			for _, f := range files {
				if fm := shardRe.FindStringSubmatch(f.Path); fm != nil && fm[2] == m[2] && strings.TrimSuffix(f.Path, fm[0]) == prefix {
					out = append(out, f)
				}
			}
		}
	case ref.Quant != "":
		q := strings.ToLower(ref.Quant)
		for _, f := range ggufs {
			base := strings.ToLower(strings.TrimSuffix(path.Base(f.Path), ".gguf"))
			base = shardRe.ReplaceAllString(base+".gguf", "")
			base = strings.TrimSuffix(base, ".gguf")
			dir := strings.ToLower(path.Dir(f.Path))
			if strings.HasSuffix(base, "-"+q) || strings.HasSuffix(base, "."+q) || strings.HasSuffix(base, "_"+q) || base == q || path.Base(dir) == q {
				out = append(out, f)
			}
		}
		if len(out) == 0 {
			return nil, fmt.Errorf("%s has no %s GGUF; available: %s", ref.Repo, ref.Quant, strings.Join(quants(ggufs), ", "))
		}
		if n := distinctModels(out); n > 1 {
			return nil, fmt.Errorf("%s: %d GGUF files match %s; name one: %s", ref.Repo, n, ref.Quant, strings.Join(paths(out), ", "))
		}
	default:
		hasST := slices.ContainsFunc(files, func(f File) bool { return strings.HasSuffix(f.Path, ".safetensors") })
		if !hasST {
			if len(ggufs) > 0 {
				return nil, fmt.Errorf("%s holds GGUF files only: pick one quantisation, e.g. %s:%s (available: %s)",
					ref.Repo, ref.Repo, firstOr(quants(ggufs), "Q4_K_M"), strings.Join(quants(ggufs), ", "))
			}
			return nil, fmt.Errorf("%s has no safetensors or GGUF weights", ref.Repo)
		}
		for _, f := range files {
			if !strings.Contains(f.Path, "/") && (strings.HasSuffix(f.Path, ".safetensors") || slices.Contains(hfFiles, f.Path)) {
				out = append(out, f)
			}
		}
	}
	return out, nil
}

func paths(fs []File) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.Path)
	}
	return out
}

func distinctModels(fs []File) int {
	seen := map[string]bool{}
	for _, f := range fs {
		seen[shardRe.ReplaceAllString(f.Path, "")] = true
	}
	return len(seen)
}

var quantRe = regexp.MustCompile(`(?i)(IQ\d_[A-Z0-9_]+|Q\d_K(?:_[SML])?|Q\d_\d|Q\d_0|F16|BF16|F32)`)

func quants(ggufs []File) []string {
	var out []string
	for _, f := range ggufs {
		if m := quantRe.FindAllString(path.Base(f.Path), -1); len(m) > 0 {
			q := strings.ToUpper(m[len(m)-1])
			if !slices.Contains(out, q) {
				out = append(out, q)
			}
		}
	}
	slices.Sort(out)
	return out
}

func firstOr(s []string, def string) string {
	if len(s) > 0 {
		return s[0]
	}
	return def
}

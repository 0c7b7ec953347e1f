package hub

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeHub behaves like the Hugging Face Hub: /api/models lists files with
// LFS hashes; /resolve/ redirects LFS files to a CDN host that serves byte
// ranges, with X-Linked-Etag and X-Linked-Size on the redirect.
type fakeHub struct {
	hub, cdn *httptest.Server
	token    string
	files    map[string][]byte // repo path → content
	lfs      map[string]bool
	badHash  map[string]bool // advertise a wrong sha256
	dropOnce map[string]int  // drop the connection after this many bytes, once
	slow     bool            // the CDN sends 16 KiB per millisecond
	noLFSAPI bool            // the file list omits LFS hashes: only X-Linked-Etag has them

	mu       sync.Mutex
	ranges   []string // Range header of each CDN request, "file|range"
	cdnAuth  []string
	requests int
}

func newFakeHub(t *testing.T, token string) *fakeHub {
	h := &fakeHub{token: token, files: map[string][]byte{}, lfs: map[string]bool{}, badHash: map[string]bool{}, dropOnce: map[string]int{}}
	h.cdn = httptest.NewServer(http.HandlerFunc(h.serveCDN))
	h.hub = httptest.NewServer(http.HandlerFunc(h.serveHub))
	t.Cleanup(func() { h.hub.Close(); h.cdn.Close() })
	return h
}

func (h *fakeHub) add(path string, size int, lfs bool) []byte {
	r := rand.New(rand.NewPCG(uint64(size), uint64(len(path))))
	b := make([]byte, size)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	h.files[path], h.lfs[path] = b, lfs
	return b
}

func (h *fakeHub) sha(path string) string {
	if h.badHash[path] {
		return strings.Repeat("0", 64)
	}
	s := sha256.Sum256(h.files[path])
	return hex.EncodeToString(s[:])
}

const repo = "acme/phi-test"

func (h *fakeHub) serveHub(w http.ResponseWriter, r *http.Request) {
	if h.token != "" && r.Header.Get("Authorization") != "Bearer "+h.token {
		http.Error(w, `{"error":"Repository not found"}`, http.StatusUnauthorized)
		return
	}
	if p, ok := strings.CutPrefix(r.URL.Path, "/api/models/"+repo+"/revision/"); ok {
		if p != "main" || r.URL.Query().Get("blobs") != "true" {
			http.NotFound(w, r)
			return
		}
		var sib []map[string]any
		for name, b := range h.files {
			s := map[string]any{"rfilename": name, "size": len(b)}
			if h.lfs[name] && !h.noLFSAPI {
				s["lfs"] = map[string]any{"sha256": h.sha(name), "size": len(b), "pointerSize": 134}
			}
			sib = append(sib, s)
		}
		sib = append(sib, map[string]any{"rfilename": "../escape.txt", "size": 1}) // must be ignored
		json.NewEncoder(w).Encode(map[string]any{"id": repo, "sha": "abc123", "siblings": sib})
		return
	}
	if p, ok := strings.CutPrefix(r.URL.Path, "/"+repo+"/resolve/main/"); ok {
		b, found := h.files[p]
		if !found {
			http.Error(w, "Entry not found", http.StatusNotFound)
			return
		}
		if !h.lfs[p] { // small git files are served by the Hub itself
			w.Header().Set("ETag", `"`+strings.Repeat("a", 40)+`"`)
			http.ServeContent(w, r, p, time.Time{}, bytes.NewReader(b))
			return
		}
		w.Header().Set("X-Linked-Etag", `"`+h.sha(p)+`"`)
		w.Header().Set("X-Linked-Size", fmt.Sprint(len(b)))
		// A different host name, as the real CDN has.
		cdn := strings.Replace(h.cdn.URL, "127.0.0.1", "localhost", 1)
		http.Redirect(w, r, cdn+"/blobs/"+p+"?signature=xyz", http.StatusFound)
		return
	}
	http.NotFound(w, r)
}

func (h *fakeHub) serveCDN(w http.ResponseWriter, r *http.Request) {
	p := strings.TrimPrefix(r.URL.Path, "/blobs/")
	h.mu.Lock()
	h.ranges = append(h.ranges, p+"|"+r.Header.Get("Range"))
	h.cdnAuth = append(h.cdnAuth, r.Header.Get("Authorization"))
	h.requests++
	drop, dropping := h.dropOnce[p]
	delete(h.dropOnce, p)
	h.mu.Unlock()
	b, ok := h.files[p]
	if !ok {
		http.NotFound(w, r)
		return
	}
	if dropping {
		// Announce the whole file, send part of it, then cut the connection.
		w.Header().Set("Content-Length", fmt.Sprint(len(b)))
		w.WriteHeader(http.StatusOK)
		w.Write(b[:drop])
		w.(http.Flusher).Flush()
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close()
		}
		return
	}
	if h.slow {
		w.Header().Set("Content-Length", fmt.Sprint(len(b)))
		for i := 0; i < len(b); i += 16 << 10 {
			if _, err := w.Write(b[i:min(i+16<<10, len(b))]); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			time.Sleep(time.Millisecond)
		}
		return
	}
	http.ServeContent(w, r, p, time.Time{}, bytes.NewReader(b))
}

func (h *fakeHub) client() *Client {
	return &Client{Endpoint: h.hub.URL, Token: h.token, RetryWait: time.Millisecond,
		FreeSpace: func(string) (int64, error) { return 1 << 40, nil }}
}

func checkFile(t *testing.T, path string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s: content differs (%d bytes, want %d)", path, len(got), len(want))
	}
}

type recordProgress struct {
	mu     sync.Mutex
	starts map[string][2]int64
	added  int64
	done   map[string]error
}

func (p *recordProgress) Start(f string, total, done int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.starts[f] = [2]int64{total, done}
}
func (p *recordProgress) Add(n int) { p.mu.Lock(); p.added += int64(n); p.mu.Unlock() }
func (p *recordProgress) Finish(f string, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done[f] = err
}

func TestPullSafetensorsRepo(t *testing.T) {
	h := newFakeHub(t, "hf_secret")
	cfg := []byte(`{"model_type":"phi3"}`)
	h.files["config.json"] = cfg
	h.add("tokenizer.json", 3000, false)
	s1 := h.add("model-00001-of-00002.safetensors", 300_000, true)
	s2 := h.add("model-00002-of-00002.safetensors", 200_000, true)
	h.add("model.safetensors.index.json", 500, false)
	h.add("phi-4-Q4_K_M.gguf", 1000, true)       // not wanted for a safetensors pull
	h.add("original/consolidated.pth", 10, true) // nor this

	c := h.client()
	prog := &recordProgress{starts: map[string][2]int64{}, done: map[string]error{}}
	c.Progress = prog
	root := t.TempDir()
	ref, _ := ParseRef(repo)
	res, err := c.Pull(context.Background(), ref, root)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "acme", "phi-test")
	if res.Dir != dir || len(res.Files) != 5 || res.Downloaded != int64(len(cfg)+3000+300_000+200_000+500) {
		t.Errorf("result %+v", res)
	}
	checkFile(t, filepath.Join(dir, "config.json"), cfg)
	checkFile(t, filepath.Join(dir, "model-00001-of-00002.safetensors"), s1)
	checkFile(t, filepath.Join(dir, "model-00002-of-00002.safetensors"), s2)
	for _, absent := range []string{"phi-4-Q4_K_M.gguf", "original", "../escape.txt"} {
		if _, err := os.Stat(filepath.Join(dir, absent)); err == nil {
			t.Errorf("%s downloaded", absent)
		}
	}
	for _, a := range h.cdnAuth {
		if a != "" {
			t.Errorf("token leaked to the CDN: %q", a)
		}
	}
	if prog.added != res.Downloaded || len(prog.done) != 5 || prog.starts["model-00002-of-00002.safetensors"] != [2]int64{200_000, 0} {
		t.Errorf("progress: added %d, %d done, starts %v", prog.added, len(prog.done), prog.starts)
	}

	// A second pull finds everything complete and downloads nothing.
	before := h.requests
	res, err = c.Pull(context.Background(), ref, root)
	if err != nil || res.Downloaded != 0 || h.requests != before {
		t.Errorf("second pull: %v, %d bytes, %d CDN requests", err, res.Downloaded, h.requests-before)
	}
}

func TestPullResumesPartialFile(t *testing.T) {
	h := newFakeHub(t, "")
	data := h.add("model.safetensors", 100_000, true)
	h.files["config.json"] = []byte("{}")
	root := t.TempDir()
	dir := filepath.Join(root, "acme", "phi-test")
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "model.safetensors.partial"), data[:40_000], 0o644)
	ref, _ := ParseRef(repo)
	res, err := h.client().Pull(context.Background(), ref, root)
	if err != nil {
		t.Fatal(err)
	}
	checkFile(t, filepath.Join(dir, "model.safetensors"), data)
	if res.Downloaded != 60_000+2 {
		t.Errorf("downloaded %d bytes, want only the missing 60000 (+2)", res.Downloaded)
	}
	if h.ranges[0] != "model.safetensors|bytes=40000-" {
		t.Errorf("CDN requests: %q", h.ranges)
	}
	if _, err := os.Stat(filepath.Join(dir, "model.safetensors.partial")); err == nil {
		t.Error("partial file left behind")
	}
}

func TestPullSurvivesDroppedConnection(t *testing.T) {
	h := newFakeHub(t, "")
	data := h.add("model.safetensors", 500_000, true)
	h.files["config.json"] = []byte("{}")
	h.dropOnce["model.safetensors"] = 123_456
	root := t.TempDir()
	ref, _ := ParseRef(repo)
	if _, err := h.client().Pull(context.Background(), ref, root); err != nil {
		t.Fatal(err)
	}
	checkFile(t, filepath.Join(root, "acme", "phi-test", "model.safetensors"), data)
	if len(h.ranges) != 2 || h.ranges[0] != "model.safetensors|" || !strings.HasPrefix(h.ranges[1], "model.safetensors|bytes=") || h.ranges[1] == "model.safetensors|bytes=0-" {
		t.Errorf("expected a resumed second request: %q", h.ranges)
	}
}

func TestPullRejectsWrongChecksum(t *testing.T) {
	h := newFakeHub(t, "")
	h.add("model.safetensors", 50_000, true)
	h.files["config.json"] = []byte("{}")
	h.badHash["model.safetensors"] = true
	root := t.TempDir()
	ref, _ := ParseRef(repo)
	_, err := h.client().Pull(context.Background(), ref, root)
	if !errors.Is(err, ErrChecksum) {
		t.Fatalf("err = %v, want ErrChecksum", err)
	}
	dir := filepath.Join(root, "acme", "phi-test")
	for _, f := range []string{"model.safetensors", "model.safetensors.partial"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			t.Errorf("%s kept after a checksum mismatch", f)
		}
	}
}

func TestPullVerifiesLinkedEtag(t *testing.T) {
	for _, bad := range []bool{false, true} {
		h := newFakeHub(t, "")
		h.noLFSAPI = true
		data := h.add("model.safetensors", 70_000, true)
		h.files["config.json"] = []byte("{}")
		h.badHash["model.safetensors"] = bad // the redirect's X-Linked-Etag is then wrong
		root := t.TempDir()
		ref, _ := ParseRef(repo)
		_, err := h.client().Pull(context.Background(), ref, root)
		if bad {
			if !errors.Is(err, ErrChecksum) {
				t.Errorf("wrong X-Linked-Etag: err = %v", err)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		checkFile(t, filepath.Join(root, "acme", "phi-test", "model.safetensors"), data)
	}
}

func TestPullGGUFQuant(t *testing.T) {
	h := newFakeHub(t, "")
	q4 := h.add("phi-4-Q4_K_M.gguf", 20_000, true)
	h.add("phi-4-Q8_0.gguf", 30_000, true)
	a := h.add("Q6_K/phi-4-Q6_K-00001-of-00002.gguf", 10_000, true)
	b := h.add("Q6_K/phi-4-Q6_K-00002-of-00002.gguf", 10_000, true)
	h.files["README.md"] = []byte("# card")
	root := t.TempDir()
	c := h.client()
	dir := filepath.Join(root, "acme", "phi-test")

	ref, _ := ParseRef(repo + ":q4_k_m")
	if _, err := c.Pull(context.Background(), ref, root); err != nil {
		t.Fatal(err)
	}
	checkFile(t, filepath.Join(dir, "phi-4-Q4_K_M.gguf"), q4)
	if _, err := os.Stat(filepath.Join(dir, "phi-4-Q8_0.gguf")); err == nil {
		t.Error("another quantisation was downloaded")
	}
	ref, _ = ParseRef(repo + "/Q6_K/phi-4-Q6_K-00001-of-00002.gguf")
	if _, err := c.Pull(context.Background(), ref, root); err != nil {
		t.Fatal(err)
	}
	checkFile(t, filepath.Join(dir, "Q6_K", "phi-4-Q6_K-00001-of-00002.gguf"), a)
	checkFile(t, filepath.Join(dir, "Q6_K", "phi-4-Q6_K-00002-of-00002.gguf"), b)

	for spec, want := range map[string]string{
		repo + ":Q2_K":      "available: Q4_K_M, Q6_K, Q8_0",
		repo:                "GGUF files only",
		repo + "/nope.gguf": "has no file",
		"acme/other":        "not found",
		repo + "@v2:Q4_K_M": "not found",
	} {
		ref, err := ParseRef(spec)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Pull(context.Background(), ref, root); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("pull %s: %v, want %q", spec, err, want)
		}
	}
}

func TestPullChecksDiskSpaceAndToken(t *testing.T) {
	h := newFakeHub(t, "hf_secret")
	h.add("model.safetensors", 10_000, true)
	h.files["config.json"] = []byte("{}")
	ref, _ := ParseRef(repo)
	c := h.client()
	c.FreeSpace = func(string) (int64, error) { return 100 << 20, nil } // less than the 256 MiB margin
	if _, err := c.Pull(context.Background(), ref, t.TempDir()); !errors.Is(err, ErrNoSpace) {
		t.Errorf("err = %v, want ErrNoSpace", err)
	}
	c = h.client()
	c.Token = ""
	if _, err := c.Pull(context.Background(), ref, t.TempDir()); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "HF_TOKEN") {
		t.Errorf("without token: %v", err)
	}
}

func TestPullCancel(t *testing.T) {
	h := newFakeHub(t, "")
	h.add("model.safetensors", 2_000_000, true)
	h.files["config.json"] = []byte("{}")
	h.slow = true
	ref, _ := ParseRef(repo)
	ctx, cancel := context.WithCancel(context.Background())
	c := h.client()
	c.Progress = &cancelAfter{cancel: cancel}
	root := t.TempDir()
	_, err := c.Pull(ctx, ref, root)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	fi, err := os.Stat(filepath.Join(root, "acme", "phi-test", "model.safetensors.partial"))
	if err != nil || fi.Size() == 0 || fi.Size() >= 2_000_000 {
		t.Errorf("partial file for resuming: %v %v", fi, err)
	}
}

type cancelAfter struct {
	cancel context.CancelFunc
	n      int
}

func (c *cancelAfter) Start(string, int64, int64) {}
func (c *cancelAfter) Add(n int) {
	if c.n += n; c.n > 100_000 {
		c.cancel()
	}
}
func (c *cancelAfter) Finish(string, error) {}

func TestParseRef(t *testing.T) {
	tests := []struct {
		in   string
		want Ref
		bad  bool
	}{
		{in: "microsoft/phi-4", want: Ref{Repo: "microsoft/phi-4", Revision: "main"}},
		{in: "bartowski/phi-4-GGUF:Q4_K_M", want: Ref{Repo: "bartowski/phi-4-GGUF", Revision: "main", Quant: "Q4_K_M"}},
		{in: "bartowski/phi-4-GGUF@v1.0:Q8_0", want: Ref{Repo: "bartowski/phi-4-GGUF", Revision: "v1.0", Quant: "Q8_0"}},
		{in: "https://huggingface.co/microsoft/phi-4", want: Ref{Repo: "microsoft/phi-4", Revision: "main"}},
		{in: "a/b/sub/dir/x.gguf", want: Ref{Repo: "a/b", Revision: "main", File: "sub/dir/x.gguf"}},
		{in: "phi-4", bad: true},
		{in: "a/b/../../etc/passwd", bad: true},
		{in: "../b", bad: true},
		{in: "a/b:", bad: true},
		{in: "a/b@x y", bad: true},
	}
	for _, tt := range tests {
		got, err := ParseRef(tt.in)
		if (err != nil) != tt.bad || (!tt.bad && got != tt.want) {
			t.Errorf("ParseRef(%q) = %+v, %v", tt.in, got, err)
		}
	}
}

func FuzzParseRef(f *testing.F) {
	for _, s := range []string{"microsoft/phi-4", "a/b:Q4_K_M", "a/b@rev/dir/f.gguf", "https://huggingface.co/a/b", "a/b/../c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRef(s)
		if err != nil {
			return
		}
		if strings.Count(r.Repo, "/") != 1 || strings.Contains(r.Repo, "..") || (r.File != "" && !validRepoPath(r.File)) {
			t.Fatalf("ParseRef(%q) = %+v", s, r)
		}
		for _, seg := range strings.Split(r.File, "/") {
			if seg == ".." {
				t.Fatalf("ParseRef(%q): file escapes: %+v", s, r)
			}
		}
	})
}

func TestBars(t *testing.T) {
	var buf bytes.Buffer
	b := &Bars{W: &buf}
	b.Start("model.safetensors", 1000, 200)
	b.Add(800)
	b.Finish("model.safetensors", nil)
	b.Start("config.json", -1, 0)
	b.Add(10)
	b.Finish("config.json", errors.New("boom"))
	out := buf.String()
	if !strings.Contains(out, "model.safetensors") || !strings.Contains(out, "100%") || !strings.Contains(out, "config.json") {
		t.Errorf("bars: %q", out)
	}
}

// A hostile or broken server that sends more than the file's announced size
// must not fill the disk: the download stops just past the expected size.
func TestPullStopsAtExpectedSize(t *testing.T) {
	const size = 1000
	var sent int64
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/api/models/") {
			json.NewEncoder(w).Encode(map[string]any{"siblings": []any{
				map[string]any{"rfilename": "config.json", "size": 2},
				map[string]any{"rfilename": "model.safetensors", "size": size,
					"lfs": map[string]any{"sha256": strings.Repeat("ab", 32), "size": size}},
			}})
			return
		}
		if strings.HasSuffix(r.URL.Path, "/config.json") {
			w.Write([]byte("{}"))
			return
		}
		chunk := bytes.Repeat([]byte{'x'}, 256<<10)
		for range 256 { // up to 64 MiB, far more than announced
			if _, err := w.Write(chunk); err != nil {
				return
			}
			mu.Lock()
			sent += int64(len(chunk))
			mu.Unlock()
		}
	}))
	defer srv.Close()
	c := &Client{Endpoint: srv.URL, RetryWait: time.Millisecond, FreeSpace: func(string) (int64, error) { return 1 << 40, nil }}
	dir := t.TempDir()
	ref, _ := ParseRef(repo)
	_, err := c.Pull(context.Background(), ref, dir)
	if err == nil {
		t.Fatal("pull of an oversized file succeeded")
	}
	var largest int64
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			largest = max(largest, fi.Size())
		}
		return nil
	})
	if largest > size+64<<10 {
		t.Errorf("left a %d-byte file for a %d-byte download: %v", largest, size, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if sent > 16<<20 { // socket buffers hold a few MiB at most
		t.Errorf("read %d bytes of a %d-byte file before giving up: %v", sent, size, err)
	}
	if _, serr := os.Stat(filepath.Join(dir, filepath.FromSlash(repo), "model.safetensors")); serr == nil {
		t.Error("the oversized file became visible")
	}
}

// A small file the Hub publishes no SHA-256 for cannot be verified, so an
// old partial download of it (perhaps of another revision) is not resumed:
// that would splice two versions together unnoticed.
func TestPullRestartsUnverifiablePartial(t *testing.T) {
	h := newFakeHub(t, "")
	h.add("model.safetensors", 10_000, true)
	h.files["tokenizer.json"] = []byte(`{"version":"new","model":{}}`)
	h.files["config.json"] = []byte("{}")
	root := t.TempDir()
	dir := filepath.Join(root, "acme", "phi-test")
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "tokenizer.json.partial"), []byte(`{"version":"old"`), 0o644)
	ref, _ := ParseRef(repo)
	if _, err := h.client().Pull(context.Background(), ref, root); err != nil {
		t.Fatal(err)
	}
	checkFile(t, filepath.Join(dir, "tokenizer.json"), h.files["tokenizer.json"])
}

// File names come from the Hub and are printed in progress bars and used
// as paths: names that escape the folder or carry control characters
// (terminal escape sequences, newlines) are refused.
func TestValidRepoPath(t *testing.T) {
	for p, ok := range map[string]bool{
		"model.safetensors": true, "sub/dir/x-Q4_K_M.gguf": true, "ünïcode/模型.gguf": true, ".gitattributes": true,
		"": false, "/etc/passwd": false, "../x": false, "a/../../x": false, "a//b": false, "a/./b": false, "a\\..\\b": false,
		"x\x00.gguf": false, "x\x1b]52;c;aGk=\x07.gguf": false, "x\n.gguf": false, "x\r.gguf": false, "x\u009b31m.gguf": false,
		"x\x7f": false, "bad\xffutf8": false,
	} {
		if got := validRepoPath(p); got != ok {
			t.Errorf("validRepoPath(%q) = %v, want %v", p, got, ok)
		}
	}
}

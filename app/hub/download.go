package hub

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Progress is told how each file download goes.
type Progress interface {
	// Start: a file of total bytes (-1: unknown) begins, done already present.
	Start(file string, total, done int64)
	// Add: n more bytes arrived.
	Add(n int)
	// Finish: the file is complete (err nil) or failed.
	Finish(file string, err error)
}

// ErrChecksum: a downloaded file does not match the Hub's SHA-256.
var ErrChecksum = errors.New("checksum mismatch")

// ErrNoSpace: the disk lacks room for the download.
var ErrNoSpace = errors.New("not enough disk space")

// partialSuffix marks a file being downloaded.
const partialSuffix = ".partial"

// maxUnverifiedResume: partial files without a published SHA-256 up to this
// size are fetched again rather than resumed across runs (the Hub stores
// files over 10 MB in LFS, which has SHA-256s).
const maxUnverifiedResume = 16 << 20

// Result says what Pull did.
type Result struct {
	Dir        string   // the model's folder: root/owner/name
	Files      []string // every selected file, full paths
	Downloaded int64    // bytes fetched in this run
}

// Pull downloads what ref selects into root/owner/name/, skipping files
// already complete and resuming partial ones.
func (c *Client) Pull(ctx context.Context, ref Ref, root string) (Result, error) {
	res := Result{Dir: filepath.Join(root, filepath.FromSlash(ref.Repo))}
	all, err := c.Files(ctx, ref)
	if err != nil {
		return res, err
	}
	files, err := Select(ref, all)
	if err != nil {
		return res, err
	}
	if err := os.MkdirAll(res.Dir, 0o755); err != nil {
		return res, fmt.Errorf("pull %s: %w", ref.Repo, err)
	}
	var need int64
	for _, f := range files {
		dest := filepath.Join(res.Dir, filepath.FromSlash(f.Path))
		res.Files = append(res.Files, dest)
		if complete(dest, f) || f.Size < 0 {
			continue
		}
		have := int64(0)
		if fi, err := os.Stat(dest + partialSuffix); err == nil {
			have = fi.Size()
		}
		need += max(f.Size-have, 0)
	}
	if err := c.checkSpace(res.Dir, need); err != nil {
		return res, err
	}
	for i, f := range files {
		n, err := c.download(ctx, ref, f, res.Files[i])
		res.Downloaded += n
		if err != nil {
			return res, err
		}
	}
	return res, nil
}

func (c *Client) checkSpace(dir string, need int64) error {
	free := c.FreeSpace
	if free == nil {
		free = freeSpace
	}
	avail, err := free(dir)
	if err != nil || avail < 0 {
		return nil // unknown: let the writes tell
	}
	const margin = 256 << 20 // keep some room for the system
	if need+margin > avail {
		return fmt.Errorf("%w: the download needs %s and %s has %s free", ErrNoSpace, FormatSize(need), dir, FormatSize(avail))
	}
	return nil
}

// complete reports whether dest already holds f (by size).
func complete(dest string, f File) bool {
	fi, err := os.Stat(dest)
	return err == nil && fi.Mode().IsRegular() && (f.Size < 0 || fi.Size() == f.Size)
}

// download fetches one file, resuming and retrying; it returns the bytes fetched.
func (c *Client) download(ctx context.Context, ref Ref, f File, dest string) (int64, error) {
	if complete(dest, f) {
		if c.Progress != nil {
			c.Progress.Start(f.Path, f.Size, f.Size)
			c.Progress.Finish(f.Path, nil)
		}
		return 0, nil
	}
	if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
		return 0, fmt.Errorf("download %s: %w", f.Path, err)
	}
	part := dest + partialSuffix
	if f.SHA256 == "" && f.Size >= 0 && f.Size <= maxUnverifiedResume {
		// Nothing can verify a resumed small file (a git file: the Hub
		// publishes no SHA-256 for it), and a partial left by an earlier
		// run may be of another revision: fetch it whole. (Resuming within
		// this run, after a dropped connection, is still done.)
		if err := os.Remove(part); err != nil && !errors.Is(err, os.ErrNotExist) {
			return 0, fmt.Errorf("download %s: %w", f.Path, err)
		}
	}
	retries, wait := c.Retries, c.RetryWait
	if retries <= 0 {
		retries = 5
	}
	if wait <= 0 {
		wait = time.Second
	}
	var fetched int64
	started := false
	var lastErr error
	for attempt := 0; attempt <= retries; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return fetched, ctx.Err()
			case <-time.After(wait):
			}
			wait *= 2
		}
		n, want, err := c.fetch(ctx, ref, f, part, &started)
		fetched += n
		if err == nil {
			err = verify(part, f, want)
			if err != nil {
				os.Remove(part)
				c.finish(f.Path, err)
				return fetched, err
			}
			if err := os.Rename(part, dest); err != nil {
				c.finish(f.Path, err)
				return fetched, fmt.Errorf("download %s: %w", f.Path, err)
			}
			c.finish(f.Path, nil)
			return fetched, nil
		}
		lastErr = err
		if ctx.Err() != nil || !retryable(err) {
			c.finish(f.Path, err)
			return fetched, err
		}
	}
	c.finish(f.Path, lastErr)
	return fetched, fmt.Errorf("download %s: giving up after %d retries: %w", f.Path, retries, lastErr)
}

func (c *Client) finish(file string, err error) {
	if c.Progress != nil {
		c.Progress.Finish(file, err)
	}
}

// permanentError is an HTTP answer that retrying will not change.
type permanentError struct{ error }

func retryable(err error) bool {
	var p permanentError
	return !errors.As(err, &p)
}

// expected is what the server said about the file.
type expected struct {
	size   int64
	sha256 string
}

// fetch appends the rest of the file to part. It returns the bytes written.
func (c *Client) fetch(ctx context.Context, ref Ref, f File, part string, started *bool) (int64, expected, error) {
	want := expected{size: f.Size, sha256: f.SHA256}
	out, err := os.OpenFile(part, os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		return 0, want, permanentError{fmt.Errorf("download %s: %w", f.Path, err)}
	}
	defer out.Close()
	have, err := out.Seek(0, io.SeekEnd)
	if err != nil {
		return 0, want, permanentError{err}
	}
	if f.Size >= 0 && have > f.Size {
		// Longer than the file: start over.
		if err := out.Truncate(0); err != nil {
			return 0, want, permanentError{err}
		}
		have, _ = out.Seek(0, io.SeekStart)
	}

	u := strings.TrimSuffix(c.Endpoint, "/") + "/" + ref.Repo + "/resolve/" + url.PathEscape(ref.Revision) + "/" + escapePath(f.Path)
	req, err := c.newRequest(ctx, http.MethodGet, u)
	if err != nil {
		return 0, want, permanentError{err}
	}
	if have > 0 {
		req.Header.Set("Range", "bytes="+strconv.FormatInt(have, 10)+"-")
	}
	cl := c.httpClient()
	var linked http.Header
	check := cl.CheckRedirect
	cl.CheckRedirect = func(r *http.Request, via []*http.Request) error {
		if r.Response != nil && linked == nil {
			linked = r.Response.Header // the Hub's answer, before the CDN's
		}
		return check(r, via)
	}
	resp, err := cl.Do(req)
	if err != nil {
		return 0, want, fmt.Errorf("download %s: %w", f.Path, err)
	}
	defer resp.Body.Close()
	if linked == nil {
		linked = resp.Header
	}
	if e := strings.Trim(linked.Get("X-Linked-Etag"), `"`); want.sha256 == "" && isSHA256(e) {
		want.sha256 = strings.ToLower(e)
	}
	if s, err := strconv.ParseInt(linked.Get("X-Linked-Size"), 10, 64); err == nil && want.size < 0 {
		want.size = s
	}

	switch resp.StatusCode {
	case http.StatusPartialContent:
		if start, ok := rangeStart(resp.Header.Get("Content-Range")); !ok || start != have {
			return 0, want, fmt.Errorf("download %s: server resumed at the wrong offset (%q)", f.Path, resp.Header.Get("Content-Range"))
		}
	case http.StatusOK:
		if have > 0 { // no range support: start over
			if err := out.Truncate(0); err != nil {
				return 0, want, permanentError{err}
			}
			if _, err := out.Seek(0, io.SeekStart); err != nil {
				return 0, want, permanentError{err}
			}
			have = 0
		}
		if want.size < 0 && resp.ContentLength >= 0 {
			want.size = resp.ContentLength
		}
	case http.StatusRequestedRangeNotSatisfiable:
		if want.size >= 0 && have == want.size {
			return 0, want, nil // already complete
		}
		out.Truncate(0)
		return 0, want, fmt.Errorf("download %s: range not satisfiable; restarting", f.Path)
	case http.StatusNotFound, http.StatusUnauthorized, http.StatusForbidden:
		return 0, want, permanentError{fmt.Errorf("download %s: %s (%w, or needs HF_TOKEN)", f.Path, resp.Status, ErrNotFound)}
	default:
		err := fmt.Errorf("download %s: %s", f.Path, resp.Status)
		if resp.StatusCode < 500 && resp.StatusCode != http.StatusTooManyRequests {
			err = permanentError{err}
		}
		return 0, want, err
	}
	if c.Progress != nil && !*started {
		c.Progress.Start(f.Path, want.size, have)
		*started = true
	}
	w := io.Writer(out)
	if c.Progress != nil {
		w = progressWriter{out, c.Progress}
	}
	body := io.Reader(resp.Body)
	if want.size >= 0 {
		// Never take more than the file's size (and a byte to notice): a
		// broken or hostile server must not fill the disk.
		body = io.LimitReader(resp.Body, want.size-have+1)
	}
	n, err := io.Copy(w, body)
	if err != nil {
		return n, want, fmt.Errorf("download %s: %w", f.Path, err)
	}
	if want.size >= 0 && have+n > want.size {
		if err := out.Truncate(0); err != nil {
			return n, want, permanentError{err}
		}
		return n, want, permanentError{fmt.Errorf("download %s: the server sent more than the %d bytes announced", f.Path, want.size)}
	}
	if err := out.Sync(); err != nil {
		return n, want, permanentError{err}
	}
	if want.size >= 0 && have+n < want.size {
		return n, want, fmt.Errorf("download %s: connection ended at %d of %d bytes", f.Path, have+n, want.size)
	}
	return n, want, nil
}

type progressWriter struct {
	w io.Writer
	p Progress
}

func (p progressWriter) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	p.p.Add(n)
	return n, err
}

// verify checks the finished partial file's size and SHA-256.
func verify(part string, f File, want expected) error {
	fi, err := os.Stat(part)
	if err != nil {
		return err
	}
	if want.size >= 0 && fi.Size() != want.size {
		return fmt.Errorf("download %s: got %d bytes, want %d", f.Path, fi.Size(), want.size)
	}
	if want.sha256 == "" {
		return nil // a small non-LFS file: the Hub publishes no SHA-256 for it
	}
	in, err := os.Open(part)
	if err != nil {
		return err
	}
	defer in.Close()
	var h hash.Hash = sha256.New()
	if _, err := io.Copy(h, in); err != nil {
		return fmt.Errorf("verify %s: %w", f.Path, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want.sha256 {
		return fmt.Errorf("%s: %w: sha256 %s, the Hub says %s (the partial file was deleted; run pull again)", f.Path, ErrChecksum, got, want.sha256)
	}
	return nil
}

func isSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// rangeStart parses the first byte of "bytes START-END/TOTAL".
func rangeStart(cr string) (int64, bool) {
	s, ok := strings.CutPrefix(cr, "bytes ")
	if !ok {
		return 0, false
	}
	s, _, ok = strings.Cut(s, "-")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

func escapePath(p string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/")
}

// FormatSize writes a byte count in binary units, as phi4mac shows sizes:
// "512 B", "1.5 KiB", "7.9 GiB".
func FormatSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

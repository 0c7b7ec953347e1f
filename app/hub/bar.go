package hub

import (
	"fmt"
	"io"

	"github.com/schollz/progressbar/v3"
)

// Bars shows one progress bar per file on w (a terminal's stderr).
type Bars struct {
	W   io.Writer
	bar *progressbar.ProgressBar
}

// Start implements Progress.
func (b *Bars) Start(file string, total, done int64) {
	b.bar = progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(b.W),
		progressbar.OptionSetDescription(file),
		progressbar.OptionShowBytes(true),
		progressbar.OptionShowCount(),
		progressbar.OptionThrottle(100e6),
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(b.W) }),
		progressbar.OptionFullWidth(),
	)
	if done > 0 {
		_ = b.bar.Set64(done)
	}
}

// Add implements Progress.
func (b *Bars) Add(n int) {
	if b.bar != nil {
		_ = b.bar.Add(n)
	}
}

// Finish implements Progress.
func (b *Bars) Finish(file string, err error) {
	if b.bar == nil {
		return
	}
	if err == nil {
		_ = b.bar.Finish()
	} else {
		_ = b.bar.Exit()
		fmt.Fprintln(b.W)
	}
	b.bar = nil
}

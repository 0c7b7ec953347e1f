package selftest

import (
	"context"
	"fmt"
	"io"

	"github.com/phi4mac/phi4mac/engine"
	"github.com/phi4mac/phi4mac/engine/cpu"
	"github.com/phi4mac/phi4mac/engine/demo"
	"github.com/phi4mac/phi4mac/engine/gpu"
	"github.com/phi4mac/phi4mac/engine/gpu/gpuopen"
)

// Options configure Run.
type Options struct {
	Device string // gpuopen kind: "metal", "emu" or "auto"
	Model  string // model to compare; "" = the embedded demo model
	Prompt []int  // prompt token ids; nil = a short default
	Tokens int    // greedy tokens to compare; 0 = 32
}

// Run opens the GPU, checks every operation against the CPU backend, then
// a whole model, writes the report to w and returns it. An error means the
// test could not run (no device, kernels that do not compile: the message
// holds the Metal compiler's output); failed checks are in the report.
func Run(ctx context.Context, opts Options, w io.Writer) (*Report, error) {
	if opts.Tokens <= 0 {
		opts.Tokens = 32
	}
	g, err := gpuopen.Open(ctx, opts.Device)
	if err != nil {
		return nil, err
	}
	defer g.Close()
	c := cpu.New(cpu.Options{Exact: true})
	defer c.Close()
	desc := g.Device().Name()
	if d, ok := g.Device().(gpu.Describer); ok {
		desc = d.Describe()
	}
	rep := NewReport(desc)
	probe := 512 << 20 // large enough to stream past the GPU's caches
	if opts.Device == "emu" {
		probe = 4 << 20
	}
	if bw, err := gpu.MeasureBandwidth(ctx, g.Device(), probe); err == nil {
		rep.Bandwidth = bw
	} else {
		return nil, err
	}
	rep.Ops = Ops(ctx, g, c)

	gm, err := gpuopen.Open(ctx, opts.Device)
	if err != nil {
		return nil, err
	}
	load := func(b engine.Backend) (*engine.Model, error) {
		eo := engine.Options{Backend: b, NoTokenizer: true}
		if opts.Model == "" {
			return demo.Load(ctx, eo)
		}
		return engine.Load(ctx, opts.Model, eo)
	}
	name := opts.Model
	if name == "" {
		name = demo.Name
	}
	gpuModel, err := load(gm)
	if err != nil {
		gm.Close()
		return nil, fmt.Errorf("selftest: load %s on the GPU: %w", name, err)
	}
	defer gpuModel.Close()
	cpuModel, err := load(cpu.New(cpu.Options{Exact: true}))
	if err != nil {
		return nil, fmt.Errorf("selftest: load %s on the CPU: %w", name, err)
	}
	defer cpuModel.Close()
	prompt := opts.Prompt
	if prompt == nil {
		prompt = []int{1}
		for i := 0; len(prompt) < 8; i++ {
			prompt = append(prompt, (37*i+11)%cpuModel.Config().Vocab)
		}
	}
	rep.Model = Model(ctx, name, gpuModel, cpuModel, prompt, opts.Tokens, 1e-3)
	rep.Write(w)
	return rep, nil
}

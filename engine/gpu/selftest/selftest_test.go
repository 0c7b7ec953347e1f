//go:build !darwin && cgo

package selftest_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/phi4mac/phi4mac/engine"
	"github.com/phi4mac/phi4mac/engine/cpu"
	"github.com/phi4mac/phi4mac/engine/demo"
	"github.com/phi4mac/phi4mac/engine/gpu"
	"github.com/phi4mac/phi4mac/engine/gpu/emu"
	"github.com/phi4mac/phi4mac/engine/gpu/selftest"
)

// TestSelftestOnEmulator runs the self-test a Mac user would run, on the
// emulator, and requires every check to pass.
func TestSelftestOnEmulator(t *testing.T) {
	ctx := context.Background()
	dev, err := emu.New(ctx, emu.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	g := gpu.New(dev, gpu.Options{AttnSpan: 2})
	defer g.Close()
	c := cpu.New(cpu.Options{Threads: 1, Exact: true})
	defer c.Close()
	rep := selftest.NewReport(dev.Name())
	rep.Ops = selftest.Ops(ctx, g, c)
	if len(rep.Ops) < 20 {
		t.Fatalf("only %d checks ran", len(rep.Ops))
	}
	gm, err := demo.Load(ctx, engine.Options{Backend: gpu.New(dev, gpu.Options{})})
	if err != nil {
		t.Fatal(err)
	}
	defer gm.Close()
	cm, err := demo.Load(ctx, engine.Options{Backend: cpu.New(cpu.Options{Threads: 1, Exact: true})})
	if err != nil {
		t.Fatal(err)
	}
	defer cm.Close()
	rep.Model = selftest.Model(ctx, demo.Name, gm, cm, []int{1, 403, 407, 261, 378}, 16, 1e-4)
	var out bytes.Buffer
	rep.Write(&out)
	t.Log("\n" + out.String())
	if !rep.OK() || !strings.Contains(out.String(), "result: PASS") {
		t.Error("self-test failed")
	}
}

// TestOpsUnderEveryLaneOrder runs every operation with the lanes of each
// threadgroup taking turns forward, in reverse and shuffled: a kernel
// whose result depends on the order has a race (a missing barrier).
func TestOpsUnderEveryLaneOrder(t *testing.T) {
	ctx := context.Background()
	c := cpu.New(cpu.Options{Threads: 1, Exact: true})
	defer c.Close()
	for _, order := range []emu.Order{emu.OrderForward, emu.OrderReverse, emu.OrderShuffle} {
		dev, err := emu.New(ctx, emu.Options{Order: order, Seed: 99})
		if err != nil {
			t.Fatal(err)
		}
		g := gpu.New(dev, gpu.Options{AttnSpan: 3})
		for _, chk := range selftest.Ops(ctx, g, c) {
			if !chk.OK() {
				t.Errorf("order %d: %s: max err %.3g (tolerance %.3g) %v", order, chk.Name, chk.MaxErr, chk.Tol, chk.Err)
			}
		}
		g.Close()
		dev.Close()
	}
}

package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"runtime/pprof"

	"github.com/spf13/cobra"

	"github.com/phi4mac/phi4mac/engine"
)

func newBenchCmd() *cobra.Command {
	var (
		mf      modelFlags
		kv      string
		o       engine.BenchOptions
		jsonOut bool
		profile string
		probeMB int
	)
	cmd := &cobra.Command{
		Use:   "bench --model PATH [-p 512] [-n 128] [--json]",
		Short: "Measure prefill and decode speed",
		Long: `bench prefills -p random tokens in one batch, then decodes -n tokens one at a time, and
reports tokens/s, the weight bytes one decode step reads and the effective bandwidth.
It then streams --roofline-mb of memory through the backend to measure its read
bandwidth (where the backend can), and reports the decode speed that bandwidth allows
if a step did nothing but read its weights, and how close decode came to it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if probeMB < 0 || probeMB > math.MaxInt>>20 {
				return fmt.Errorf("--roofline-mb %d: want 0 (no roofline) to %d", probeMB, math.MaxInt>>20)
			}
			var err error
			if o.KV, err = engine.ParseKVType(kv); err != nil {
				return err
			}
			m, err := mf.open(ctx, false)
			if err != nil {
				return err
			}
			defer m.Close()
			if profile != "" {
				f, err := os.Create(profile)
				if err != nil {
					return err
				}
				defer f.Close()
				if err := pprof.StartCPUProfile(f); err != nil {
					return err
				}
				defer pprof.StopCPUProfile()
			}
			o.ProbeBytes = probeMB << 20
			r, err := m.Bench(ctx, o)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if jsonOut {
				info := m.Info()
				js, _ := json.MarshalIndent(struct {
					Model   string `json:"model"`
					Quant   string `json:"quant_mix"`
					Threads int    `json:"threads"`
					engine.BenchResult
				}{info.Path, info.QuantMix(), mf.threads, r}, "", "  ")
				fmt.Fprintln(w, string(js))
				return nil
			}
			fmt.Fprintf(w, "model    %s (%s)\n", m.Info().Path, m.Info().QuantMix())
			fmt.Fprintf(w, "backend  %s, %d threads\n", r.Backend, mf.threads)
			fmt.Fprintf(w, "prefill  %d tokens in %.3f s: %.1f tok/s\n", r.Prompt, r.PrefillSecs, r.PrefillTokS)
			fmt.Fprintf(w, "decode   %d tokens in %.3f s: %.2f tok/s, %.1f MB of weights per token, %.1f GB/s effective\n",
				r.Gen, r.DecodeSecs, r.DecodeTokS, float64(r.BytesPerToken)/1e6, r.DecodeGBs)
			if r.MemoryGBs > 0 {
				fmt.Fprintf(w, "roofline %.1f GB/s measured read bandwidth: at most %.2f tok/s; decode reached %.0f%%\n",
					r.MemoryGBs, r.RooflineTokS, 100*r.DecodeOfRoofline)
			}
			if r.PrefillCPUSecs > 0 && r.DecodeCPUSecs > 0 {
				t := float64(mf.threads)
				fmt.Fprintf(w, "cpu      prefill %.1f s, decode %.1f s of CPU time: with %d idle cores about %.1f and %.2f tok/s\n",
					r.PrefillCPUSecs, r.DecodeCPUSecs, mf.threads, float64(r.Prompt)/(r.PrefillCPUSecs/t), float64(r.Gen)/(r.DecodeCPUSecs/t))
			}
			return nil
		},
	}
	mf.register(cmd, "model: a GGUF file or a Hugging Face folder")
	cmd.Flags().IntVarP(&o.Prompt, "prompt", "p", 512, "prompt tokens to prefill")
	cmd.Flags().IntVarP(&o.Gen, "gen", "n", 128, "tokens to decode")
	cmd.Flags().StringVar(&kv, "kv", "f16", "KV cache type: f16 or f32")
	cmd.Flags().BoolVar(&jsonOut, "json", false, "print JSON")
	cmd.Flags().StringVar(&profile, "cpuprofile", "", "write a CPU profile of the run here")
	cmd.Flags().IntVar(&probeMB, "roofline-mb", 512, "MiB of memory the bandwidth probe streams (past the caches); 0 skips the roofline")
	return cmd
}

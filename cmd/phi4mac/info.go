package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/phi4mac/phi4mac/engine"
)

func newInfoCmd() *cobra.Command {
	var (
		mf modelFlags
		sf sessionFlags
	)
	cmd := &cobra.Command{
		Use:   "info --model PATH",
		Short: "Describe a model: architecture, sizes, quantisation, memory needed",
		Long: `info describes a model: architecture, parameters, quantisation mix, the weight bytes
one decoded token reads, and the memory it needs with a KV cache of --ctx tokens, compared
with what this machine has available. It maps the file without reading the weights, so it
also describes models too large to run here.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			// Describing a model must work where running it would not: map it
			// on the CPU backend (zero copy, nothing uploaded) and skip the
			// memory check, whose verdict is printed below instead.
			mf.backend, mf.noMemoryCheck = "cpu", true
			m, err := mf.open(cmd.Context(), true)
			if err != nil {
				return err
			}
			defer m.Close()
			c, info := m.Config(), m.Info()
			kv, err := engine.ParseKVType(sf.kv)
			if err != nil {
				return err
			}
			n := sf.ctx
			if n == 0 {
				n = min(c.MaxContext, 4096)
			}
			elem := int64(2)
			if kv == engine.KVF32 {
				elem = 4
			}
			kvBytes := 2 * int64(c.Layers) * int64(n) * int64(c.KVHeads) * int64(c.HeadDim) * elem
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "model        %s (%s)\n", info.Path, info.Format)
			if c.Name != "" {
				fmt.Fprintf(w, "name         %s\n", c.Name)
			}
			fmt.Fprintf(w, "architecture %s\n", c.String())
			fmt.Fprintf(w, "parameters   %.3g\n", float64(info.Params))
			fmt.Fprintf(w, "quant mix    %s\n", info.QuantMix())
			fmt.Fprintf(w, "weights      %.1f MiB (%.1f MiB read per decoded token)\n", mib(info.WeightBytes), mib(info.DecodeBytes))
			fmt.Fprintf(w, "KV cache     %.1f MiB at %d tokens (%s)\n", mib(kvBytes), n, kv)
			need := info.WeightBytes + kvBytes
			fmt.Fprintf(w, "memory       %.1f MiB needed in all\n", mib(need))
			if avail, ok := engine.AvailableMemory(); ok {
				fmt.Fprintf(w, "this machine %.1f MiB available: %s\n", mib(avail), fitVerdict(need, avail))
			}
			if tok := m.Tokenizer(); tok != nil {
				fmt.Fprintf(w, "tokenizer    %d tokens, chat template: %v\n", tok.VocabSize(), tok.HasChatTemplate())
			} else {
				fmt.Fprintf(w, "tokenizer    none\n")
			}
			return nil
		},
	}
	mf.register(cmd, "model: a GGUF file or a Hugging Face folder (default: the built-in demo model)")
	sf.register(cmd)
	return cmd
}

// fitVerdict says whether need bytes fit in avail, and what to do if not.
func fitVerdict(need, avail int64) string {
	if need > avail {
		return "does NOT fit: use a smaller quantisation (e.g. Q4_K_M) or a shorter --ctx"
	}
	return "fits"
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

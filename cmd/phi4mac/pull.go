package main

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/phi4mac/phi4mac/app/hub"
)

func newPullCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "pull REPO[:QUANT | /FILE]",
		Short: "Download a model from Hugging Face",
		Long: `pull downloads a model into phi4mac's store:

  phi4mac pull microsoft/phi-4                  the safetensors model (all shards)
  phi4mac pull bartowski/phi-4-GGUF:Q4_K_M      one GGUF quantisation
  phi4mac pull bartowski/phi-4-GGUF/phi-4-Q8_0.gguf   one file
  phi4mac pull microsoft/phi-4@<revision>       a branch, tag or commit

An interrupted pull resumes where it stopped. LFS files are checked against
the SHA-256 the Hub publishes. HF_TOKEN is sent for gated or private models;
HF_ENDPOINT selects another Hub (e.g. a mirror).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := loadSettings(cmd)
			if err != nil {
				return err
			}
			ref, err := hub.ParseRef(args[0])
			if err != nil {
				return exitError{code: 2, err: err}
			}
			c := hub.FromEnv()
			c.Progress = &hub.Bars{W: cmd.ErrOrStderr()}
			res, err := c.Pull(cmd.Context(), ref, s.ModelsDir)
			if err != nil {
				return err
			}
			name := ref.Repo
			if len(res.Files) > 0 && strings.HasSuffix(res.Files[0], ".gguf") {
				rel, _ := filepath.Rel(s.ModelsDir, res.Files[0])
				name = strings.TrimSuffix(filepath.ToSlash(rel), ".gguf")
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Pulled %s into %s\nUse it with: phi4mac chat --model %s\n", ref.Repo, res.Dir, name)
			return nil
		},
	}
	cmd.Flags().String("config", "", "settings file")
	cmd.Flags().String("models-dir", "", "phi4mac's model store")
	return cmd
}

package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/phi4mac/phi4mac/app/config"
	"github.com/phi4mac/phi4mac/app/llm"
	"github.com/phi4mac/phi4mac/app/llm/local"
	"github.com/phi4mac/phi4mac/app/models"
	"github.com/phi4mac/phi4mac/engine"
)

// addSettingsFlags registers the settings flags shared by ask, chat and
// serve; config.Load applies those the user set over file and environment.
func addSettingsFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.String("config", "", "settings file (default: the OS config dir's phi4mac/config.yaml)")
	f.String("model", "", "model: a name from `phi4mac models`, a GGUF file or a Hugging Face folder")
	f.String("models-dir", "", "phi4mac's model store")
	f.Float64("temperature", 0, "sampling temperature, 0 (greedy) to 2")
	f.Float64("top-p", 0, "nucleus sampling mass, above 0 and at most 1")
	f.Int("ctx", 0, "context length in tokens (0: the model's own, at most 4096)")
	f.Int("max-tokens", 0, "longest answer in tokens (0: up to the context)")
	f.String("system", "", "system prompt")
	f.String("backend", "auto", backendHelp)
}

// backendFlag returns cmd's --backend value.
func backendFlag(cmd *cobra.Command) string {
	kind, _ := cmd.Flags().GetString("backend")
	return kind
}

// loadSettings reads the settings for cmd (file, PHI4MAC_* env, flags).
// Invalid settings are a usage error (exit status 2).
func loadSettings(cmd *cobra.Command) (config.Settings, error) {
	path, _ := cmd.Flags().GetString("config")
	s, err := config.Load(config.LoadOptions{Path: path, Flags: cmd.Flags()})
	if err != nil {
		return s, exitError{code: 2, err: err}
	}
	return s, nil
}

// newLoader resolves models through the local catalogue (phi4mac's store,
// Ollama's, LM Studio's), with the embedded demo model as the last resort.
// Models run on Metal when the Mac has a usable GPU, else on the CPU.
// backend names the compute backend as --backend does; one that cannot
// be opened makes each load fail with the reason.
func newLoader(s config.Settings, backend string, log *slog.Logger) *local.Loader {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cat := models.DefaultCatalog(s.ModelsDir, s.Model)
	return &local.Loader{
		Catalog: cat.List,
		Options: local.Options{
			ContextLength: s.ContextLength,
			Logger:        log,
			NewBackend: func() (engine.Backend, error) {
				return openBackend(context.Background(), backend, 0, log)
			},
		},
		Demo: true,
	}
}

// sampling returns the default sampling parameters from the settings.
func sampling(s config.Settings) llm.Params {
	return llm.Params{Temperature: s.Temperature, TopP: s.TopP, MaxTokens: s.MaxTokens}
}

// noteDemo tells the user (on stderr) when the demo model answers.
func noteDemo(w io.Writer, m llm.Model) {
	if m.Info().Source == "demo" {
		fmt.Fprintln(w, "phi4mac: no model found; using the built-in demo model (a tiny TinyStories model that only writes children's stories). Get a real one with `phi4mac pull microsoft/phi-4` or pass --model.")
	}
}

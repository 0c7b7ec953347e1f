package main

import (
	"fmt"
	"log/slog"
	"net"

	"github.com/spf13/cobra"

	"github.com/phi4mac/phi4mac/app/api"
	"github.com/phi4mac/phi4mac/app/config"
)

func newServeCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve an OpenAI- and Ollama-compatible API on this machine",
		Long: `serve holds one model and answers the OpenAI API (/v1/chat/completions,
/v1/completions, /v1/models) and the Ollama API (/api/chat, /api/generate,
/api/tags, /api/show, /api/ps, /api/version) on a loopback address.

Requests run one at a time, in arrival order. The model loads on the first
request and unloads after --idle-unload without use. Set PHI4MAC_API_KEY to
require "Authorization: Bearer <key>"; list browser origins allowed to call
the API with --allow-origin.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := loadSettings(cmd)
			if err != nil {
				return err
			}
			var hosts []string
			if h, _, err := net.SplitHostPort(s.API.Addr); err == nil && !config.IsLoopbackHost(h) {
				// Listening beyond loopback (config insists on a token then):
				// clients reach us by whatever name the network gives.
				hosts = []string{"*"}
			}
			log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelInfo}))
			srv, err := api.New(api.Options{
				Loader:         newLoader(s, backendFlag(cmd), log),
				Defaults:       sampling(s),
				SystemPrompt:   s.SystemPrompt,
				IdleUnload:     s.IdleUnload,
				Token:          s.API.Token,
				AllowedOrigins: s.API.AllowedOrigins,
				AllowedHosts:   hosts,
				MaxBodyBytes:   s.API.MaxBodyBytes,
				MaxPromptBytes: s.API.MaxPromptBytes,
				MaxQueue:       s.API.MaxQueue,
				Version:        version,
				Logger:         log,
			})
			if err != nil {
				return err
			}
			return api.ListenAndServe(cmd.Context(), s.API.Addr, srv, func(a net.Addr) {
				fmt.Fprintf(cmd.ErrOrStderr(), "phi4mac: serving on http://%s (OpenAI API under /v1, Ollama API under /api); Ctrl-C stops\n", a)
			})
		},
	}
	addSettingsFlags(cmd)
	f := cmd.Flags()
	f.String("addr", "", "listen address host:port (default 127.0.0.1:11435)")
	f.StringSlice("allow-origin", nil, "browser origin allowed by CORS, e.g. http://localhost:3000 (repeatable)")
	f.Duration("idle-unload", 0, "unload the model after this long unused (0: keep it)")
	return cmd
}

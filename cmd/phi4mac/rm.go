package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/phi4mac/phi4mac/app/hub"
	"github.com/phi4mac/phi4mac/app/models"
)

func newRmCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rm NAME...",
		Short: "Delete models from phi4mac's store",
		Long: `rm deletes models that phi4mac downloaded. Models belonging to Ollama or
LM Studio are never deleted: remove them with those applications.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := loadSettings(cmd)
			if err != nil {
				return err
			}
			cat := models.DefaultCatalog(s.ModelsDir, "")
			for _, name := range args {
				m, err := cat.Remove(cmd.Context(), name)
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "Removed %s (%s, %s)\n", m.Name, m.Path, hub.FormatSize(m.Size))
			}
			return nil
		},
	}
	cmd.Flags().String("config", "", "settings file")
	cmd.Flags().String("models-dir", "", "phi4mac's model store")
	return cmd
}

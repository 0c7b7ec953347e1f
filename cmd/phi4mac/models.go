package main

import (
	"encoding/json"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/phi4mac/phi4mac/app/hub"
	"github.com/phi4mac/phi4mac/app/models"
)

func newModelsCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "models",
		Short: "List local models (phi4mac's store, Ollama's and LM Studio's)",
		Long: `models lists the models phi4mac can use: those in its own store (see
"phi4mac pull"), and GGUF files already downloaded by Ollama or LM Studio,
which are used where they are, never copied. The first is the default.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := loadSettings(cmd)
			if err != nil {
				return err
			}
			list, err := models.DefaultCatalog(s.ModelsDir, s.Model).List(cmd.Context())
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(list)
			}
			if len(list) == 0 {
				fmt.Fprintf(out, "No models found in %s, Ollama's or LM Studio's stores.\nGet one with: phi4mac pull microsoft/phi-4\n", s.ModelsDir)
				return nil
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tSIZE\tFORMAT\tQUANT\tFAMILY\tSOURCE\tPATH")
			for _, m := range list {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", m.Name, hub.FormatSize(m.Size), m.Format, m.Quantization, m.Family, m.Source, m.Path)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().String("config", "", "settings file")
	cmd.Flags().String("models-dir", "", "phi4mac's model store")
	cmd.Flags().String("model", "", "default model (listed first)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

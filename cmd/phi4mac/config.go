package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/phi4mac/phi4mac/app/config"
)

func newConfigCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Show or change settings",
		Long: `config shows the settings in effect (defaults, the settings file,
PHI4MAC_* environment variables) or changes one in the settings file.

Settings: ` + strings.Join(config.Keys(), ", ") + `.
Environment names are PHI4MAC_ and the key upper-cased with "." as "_"
(e.g. PHI4MAC_API_ADDR); PHI4MAC_API_KEY sets api.token.`,
	}
	cmd.PersistentFlags().String("config", "", "settings file (default: the OS config dir's phi4mac/config.yaml)")
	cmd.AddCommand(
		&cobra.Command{
			Use:   "show",
			Short: "Print the settings in effect, as YAML (the API token hidden)",
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				s, err := loadSettings(cmd)
				if err != nil {
					return err
				}
				if s.API.Token != "" {
					s.API.Token = "(set)"
				}
				b, err := yaml.Marshal(s)
				if err != nil {
					return err
				}
				_, err = cmd.OutOrStdout().Write(b)
				return err
			},
		},
		&cobra.Command{
			Use:   "path",
			Short: "Print the settings file's path",
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				p, _ := cmd.Flags().GetString("config")
				if p == "" {
					var err error
					if p, err = config.DefaultPath(); err != nil {
						return err
					}
				}
				_, err := fmt.Fprintln(cmd.OutOrStdout(), p)
				return err
			},
		},
		&cobra.Command{
			Use:   "set KEY VALUE",
			Short: "Change one setting in the settings file",
			Args:  cobra.ExactArgs(2),
			RunE: func(cmd *cobra.Command, args []string) error {
				p, _ := cmd.Flags().GetString("config")
				if _, err := config.Set(p, args[0], args[1]); err != nil {
					return exitError{code: 2, err: err}
				}
				_, err := fmt.Fprintf(cmd.OutOrStdout(), "%s = %s\n", args[0], args[1])
				return err
			},
		},
	)
	return cmd
}

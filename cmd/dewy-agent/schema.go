package main

import (
	"encoding/json"
	"io"

	"github.com/dewy-agent/dewy-agent/config"
)

// cmdSchema prints a JSON Schema of the config file, generated from the
// decoders the agent itself uses, for editors of dewy.json and dewy.yaml.
func cmdSchema(args []string, stdout, stderr io.Writer) int {
	if code, ok := noArguments("schema", args, stderr); !ok {
		return code
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(config.JSONSchema()); err != nil {
		return exitError
	}
	return exitOK
}

package oci

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// runHooks runs hooks in order, each with the container's state as JSON
// on its stdin, as runtime-spec's "POSIX-platform Hooks" says; the first
// that fails (or outlives its timeout) stops the others, and its error
// says which it was and what it printed.
func runHooks(kind string, hooks []specs.Hook, st *specs.State) error {
	state, err := json.Marshal(st)
	if err != nil {
		return err
	}
	for i, h := range hooks {
		ctx := context.Background()
		if h.Timeout != nil && *h.Timeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, time.Duration(*h.Timeout)*time.Second)
			defer cancel()
		}
		args := h.Args
		if len(args) == 0 {
			args = []string{h.Path}
		}
		cmd := exec.CommandContext(ctx, h.Path, args[1:]...)
		cmd.Args = args
		cmd.Env = h.Env
		cmd.Stdin = bytes.NewReader(state)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			if ctx.Err() != nil {
				err = fmt.Errorf("timed out after %d s", *h.Timeout)
			}
			return fmt.Errorf("%s hook %d (%s): %w: %s", kind, i, h.Path, err, bytes.TrimSpace(out.Bytes()))
		}
	}
	return nil
}

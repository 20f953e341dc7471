package main

import (
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/gocell/gocell/final/internal/container"
	"github.com/gocell/gocell/final/internal/image"
	"github.com/urfave/cli/v2"
)

// completeArg is the hidden command the shell scripts call at each Tab:
//
//	gocell __complete WORD... CURRENT
//
// WORDs are the words typed after "gocell", CURRENT the one being typed;
// it prints the candidates, one a line: commands, flags, or the names of
// containers, images, networks and volumes, by what the command takes.
// Names come from the store, which only root may read: as another user
// (sudo's completion runs as you), commands and flags only.
const completeArg = "__complete"

// The shell scripts, from `gocell completion bash|zsh`. Each asks gocell
// itself, so they stay right as commands change.
const bashCompletion = `# gocell's completion for bash. Load it with
#   source <(gocell completion bash)
# or put that line in ~/.bashrc (scripts/provision.sh installs it).
_gocell() {
	local cur words cword
	if declare -F _get_comp_words_by_ref >/dev/null; then
		# bash-completion: image names keep their ':' in one word.
		_get_comp_words_by_ref -n : cur words cword
	else
		cur=${COMP_WORDS[COMP_CWORD]} words=("${COMP_WORDS[@]}") cword=$COMP_CWORD
	fi
	local IFS=$'\n'
	COMPREPLY=($(gocell __complete "${words[@]:1:cword-1}" "$cur" 2>/dev/null))
	if declare -F __ltrim_colon_completions >/dev/null; then
		__ltrim_colon_completions "$cur"
	fi
}
complete -o default -F _gocell gocell
`

const zshCompletion = `# gocell's completion for zsh. Load it with
#   source <(gocell completion zsh)
# after compinit, or put that line in ~/.zshrc.
_gocell() {
	local -a cands
	cands=("${(@f)$(gocell __complete "${(@)words[2,CURRENT-1]}" "${words[CURRENT]}" 2>/dev/null)}")
	compadd -a cands
}
compdef _gocell gocell
`

// completionCommand prints the script for a shell.
func completionCommand() *cli.Command {
	return &cli.Command{
		Name:      "completion",
		Usage:     "print the shell completion script: source <(gocell completion bash), or zsh",
		ArgsUsage: "bash|zsh",
		Action: func(c *cli.Context) error {
			switch c.Args().First() {
			case "bash":
				printf("%s", bashCompletion)
			case "zsh":
				printf("%s", zshCompletion)
			default:
				return usageError("completion: give bash or zsh")
			}
			return nil
		},
	}
}

// What the first argument of a command is, for completion.
var (
	takesContainers = set("start", "stop", "restart", "rm", "kill", "pause", "unpause", "exec", "logs",
		"inspect", "port", "wait", "rename", "update", "diff", "top", "commit", "cp", "stats")
	takesImages = set("run", "create", "pull", "push", "rmi", "tag", "history", "save")
	// Commands whose every argument is one (the others take one first).
	takesMany = set("start", "stop", "restart", "rm", "kill", "pause", "unpause", "inspect",
		"wait", "update", "rmi", "save", "stats")
)

func set(names ...string) map[string]bool {
	m := map[string]bool{}
	for _, n := range names {
		m[n] = true
	}
	return m
}

// complete prints the candidates for the last of args.
func complete(app *cli.App, args []string) {
	if len(args) == 0 {
		args = []string{""}
	}
	words, cur := args[:len(args)-1], args[len(args)-1]
	root := os.Getenv("GOCELL_ROOT")
	if root == "" {
		root = defaultRoot
	}
	flags := app.Flags
	var cmd *cli.Command
	commands := app.Commands
	var positional []string
	for i := 0; i < len(words); i++ {
		w := words[i]
		if strings.HasPrefix(w, "-") {
			f := findFlag(flags, w)
			if f != nil && takesValue(f) && !strings.Contains(w, "=") && i+1 < len(words) {
				if cmd == nil && strings.TrimLeft(w, "-") == "root" {
					root = words[i+1]
				}
				i++
			}
			continue
		}
		if sub := findCommand(commands, w); sub != nil && (cmd == nil || len(cmd.Subcommands) > 0) && len(positional) == 0 {
			cmd, commands, flags = sub, sub.Subcommands, sub.Flags
			continue
		}
		positional = append(positional, w)
	}
	var cands []string
	switch {
	case strings.HasPrefix(cur, "-"):
		for _, f := range flags {
			for _, n := range f.Names() {
				if len(n) == 1 {
					cands = append(cands, "-"+n)
				} else {
					cands = append(cands, "--"+n)
				}
			}
		}
	case len(words) > 0 && strings.HasPrefix(words[len(words)-1], "-") && takesValue(findFlag(flags, words[len(words)-1])):
		// A flag's value: the shell's own (file names) will do.
	case cmd == nil || (len(cmd.Subcommands) > 0 && len(positional) == 0):
		for _, sub := range commands {
			if !sub.Hidden && !strings.HasPrefix(sub.Name, "__") {
				cands = append(cands, sub.Name)
			}
		}
	default:
		cands = completeNames(root, cmd, positional)
	}
	sort.Strings(cands)
	for _, c := range cands {
		if strings.HasPrefix(c, cur) {
			fmt.Println(c)
		}
	}
}

// completeNames are the containers or images the command takes next,
// read from the store under root without changing it; nothing if there
// is no store there (or we may not read it).
func completeNames(root string, cmd *cli.Command, positional []string) []string {
	name := cmd.Name
	if len(positional) > 0 && !takesMany[name] {
		if name != "commit" && name != "tag" && name != "cp" {
			return nil // the command's own arguments, run's say
		}
	}
	var out []string
	switch {
	case takesContainers[name]:
		// Read as they are: no directory made, no state reconciled.
		all, _ := (&container.Store{Root: root}).Names()
		for _, n := range all {
			out = append(out, n)
			if name == "cp" {
				out = append(out, n+":")
			}
		}
	case takesImages[name]:
		all, _ := image.Names(root)
		for _, t := range all {
			if r, err := image.ParseReference(t); err == nil {
				out = append(out, r.Familiar())
			}
		}
	}
	return out
}

// findCommand is the visible command or alias called name.
func findCommand(commands []*cli.Command, name string) *cli.Command {
	for _, c := range commands {
		if c.Name == name || contains(c.Aliases, name) {
			return c
		}
	}
	return nil
}

// findFlag is the flag a word such as --memory=64M or -m names.
func findFlag(flags []cli.Flag, word string) cli.Flag {
	n, _, _ := strings.Cut(strings.TrimLeft(word, "-"), "=")
	for _, f := range flags {
		if contains(f.Names(), n) {
			return f
		}
	}
	return nil
}

// takesValue says whether a flag is followed by a value.
func takesValue(f cli.Flag) bool {
	if f == nil {
		return false
	}
	_, isBool := f.(*cli.BoolFlag)
	return !isBool
}

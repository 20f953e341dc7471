package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"strings"
	"text/tabwriter"
	"text/template"

	"github.com/urfave/cli/v2"
)

// formatFlag is --format, as Docker's.
func formatFlag(what string) cli.Flag {
	return &cli.StringFlag{Name: "format", Aliases: []string{"f"},
		Usage: "a Go template per " + what + ", such as '{{.Name}}' or 'table {{.ID}}\\t{{.Name}}'; " +
			"json: one JSON object a line"}
}

// format is a --format: a Go template (text/template) run on each item,
// as Docker's. "table TEMPLATE" aligns the columns under a header made
// from the fields' names; "json" writes each item as one line of JSON.
// \t and \n in it are a tab and a newline, as Docker reads them.
type format struct {
	tmpl   *template.Template
	table  bool
	header string
}

// funcs are the template functions Docker's templates have.
var funcs = template.FuncMap{
	"json": func(v any) (string, error) {
		b, err := json.Marshal(v)
		return string(b), err
	},
	"join":  strings.Join,
	"split": strings.Split,
	"lower": strings.ToLower,
	"upper": strings.ToUpper,
	"title": func(s string) string {
		if s == "" {
			return s
		}
		return strings.ToUpper(s[:1]) + s[1:]
	},
	"truncate": func(s string, n int) string {
		if len(s) > n {
			return s[:n]
		}
		return s
	},
	"pad": func(s string, before, after int) string {
		return strings.Repeat(" ", before) + s + strings.Repeat(" ", after)
	},
}

// fieldRE finds {{.Field}} in a template, for the table's header.
var fieldRE = regexp.MustCompile(`\{\{\s*\.(\w+)\s*\}\}`)

// actionRE finds any other {{...}}.
var actionRE = regexp.MustCompile(`\{\{.*?\}\}`)

// parseFormat reads a --format; headers name the columns of a table
// ({{.ID}} is "CONTAINER ID" in ps), the field's name in capitals else.
func parseFormat(text string, headers map[string]string) (*format, error) {
	f := &format{}
	if text == "json" {
		text = "{{json .}}"
	}
	if rest, ok := strings.CutPrefix(text, "table"); ok {
		f.table, text = true, strings.TrimSpace(rest)
	}
	text = strings.NewReplacer(`\t`, "\t", `\n`, "\n").Replace(text)
	tmpl, err := template.New("format").Funcs(funcs).Option("missingkey=error").Parse(text + "\n")
	if err != nil {
		return nil, usageError("--format: %v", err)
	}
	f.tmpl = tmpl
	if f.table {
		h := fieldRE.ReplaceAllStringFunc(text, func(m string) string {
			name := fieldRE.FindStringSubmatch(m)[1]
			if v, ok := headers[name]; ok {
				return v
			}
			return strings.ToUpper(name)
		})
		f.header = actionRE.ReplaceAllString(h, "")
	}
	return f, nil
}

// render writes the items. A template that fails on an item (a field it
// does not have) is one error, before anything is written.
func (f *format) render(w io.Writer, items []any) error {
	var out bytes.Buffer
	for _, it := range items {
		if err := f.tmpl.Execute(&out, it); err != nil {
			return usageError("--format: %v", err)
		}
	}
	if !f.table {
		_, err := w.Write(out.Bytes())
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	fmt.Fprintln(tw, f.header)
	tw.Write(out.Bytes())
	return tw.Flush()
}

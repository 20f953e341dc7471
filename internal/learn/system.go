package learn

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// The checks of chapter 09's exercises look at gocell's store on disk,
// as the chapter's session leaves it: no workspace, no step.

// GocellRoot is the gocell root the chapter 09 checks look at: the
// GOCELL_ROOT of the environment, or else the chapter's own root,
// /tmp/gocell-demo, if it is there, or else gocell's default.
func GocellRoot() string {
	if r := os.Getenv("GOCELL_ROOT"); r != "" {
		return r
	}
	if _, err := os.Stat("/tmp/gocell-demo/repositories.json"); err == nil {
		return "/tmp/gocell-demo"
	}
	return "/var/lib/gocell"
}

// imageLayers returns the layer directories of the image named ref
// ("demo:v2" is docker.io/library/demo:v2), bottom first, and its id.
func imageLayers(root, ref string) ([]string, string, error) {
	data, err := os.ReadFile(filepath.Join(root, "repositories.json"))
	if err != nil {
		return nil, "", fmt.Errorf("no image store at %s (set GOCELL_ROOT to the --root you used): %v", root, err)
	}
	var repos struct{ Refs map[string]string }
	if err := json.Unmarshal(data, &repos); err != nil {
		return nil, "", err
	}
	name := "docker.io/library/" + ref
	id, ok := repos.Refs[name]
	if !ok {
		return nil, "", fmt.Errorf("no image %s in %s (gocell images lists them)", ref, root)
	}
	hex := strings.TrimPrefix(id, "sha256:")
	data, err = os.ReadFile(filepath.Join(root, "images", hex, "config.json"))
	if err != nil {
		return nil, "", err
	}
	var cfg struct {
		RootFS struct {
			DiffIDs []string `json:"diff_ids"`
		} `json:"rootfs"`
	}
	if err := json.Unmarshal(data, &cfg); err != nil {
		return nil, "", err
	}
	var dirs []string
	for _, d := range cfg.RootFS.DiffIDs {
		dirs = append(dirs, filepath.Join(root, "layers", strings.TrimPrefix(d, "sha256:"), "diff"))
	}
	return dirs, id, nil
}

// checkCommit is exercise 1 of chapter 09: demo:v2, committed from a
// container that wrote /greeting and removed /etc/os-release, has a top
// layer with the file, and the deletion as overlayfs keeps it: a
// character device 0/0.
func checkCommit(root string) []result {
	res := func(name string, err error) result {
		r := result{name: name, pass: err == nil}
		if err != nil {
			r.output = []string{"Error: " + err.Error()}
		}
		return r
	}
	layers, _, err := imageLayers(root, "demo:v2")
	if err != nil {
		return []result{res("demo:v2 is an image of the store", err)}
	}
	top := layers[len(layers)-1]
	greeting, err := os.ReadFile(filepath.Join(top, "greeting"))
	if err == nil && string(greeting) != "hi\n" {
		err = fmt.Errorf("greeting holds %q, not %q", greeting, "hi\n")
	}
	out := []result{res("demo:v2 is an image of the store", nil),
		res("its top layer has /greeting, holding hi", err)}
	var st unix.Stat_t
	err = unix.Lstat(filepath.Join(top, "etc", "os-release"), &st)
	if err == nil && (st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0) {
		err = fmt.Errorf("%s/etc/os-release is there, but not a 0/0 character device", top)
	}
	return append(out, res("and the removal of /etc/os-release, as a 0/0 character device (a whiteout)", err))
}

// checkShared is exercise 2 of chapter 09: demo2:latest, imported from
// the same layout as demo:latest, is the same image, and the store keeps
// its layer once.
func checkShared(root string) []result {
	fail := func(name string, err error) result {
		return result{name: name, output: []string{"Error: " + err.Error()}}
	}
	a, idA, err := imageLayers(root, "demo:latest")
	if err != nil {
		return []result{fail("demo:latest and demo2:latest are images of the store", err)}
	}
	b, idB, err := imageLayers(root, "demo2:latest")
	if err != nil {
		return []result{fail("demo:latest and demo2:latest are images of the store", err)}
	}
	out := []result{{name: "demo:latest and demo2:latest are images of the store", pass: true}}
	same := result{name: "they are one image: the same id", pass: idA == idB}
	if !same.pass {
		same.output = []string{fmt.Sprintf("Error: demo is %s, demo2 %s", idA, idB)}
	}
	dirs := map[string]bool{}
	for _, d := range append(a, b...) {
		dirs[d] = true
	}
	one := result{name: "their layer is stored once, in one directory", pass: len(dirs) == len(a)}
	if !one.pass {
		one.output = []string{fmt.Sprintf("Error: %d layer directories for %d layers", len(dirs), len(a))}
	}
	return append(out, same, one)
}

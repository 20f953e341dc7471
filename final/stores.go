package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/gocell/gocell/final/internal/container"
	"github.com/gocell/gocell/final/internal/image"
	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"
)

// defaultConfig is gocell's configuration file, like Docker's daemon.json.
const defaultConfig = "/etc/gocell/config.json"

// config is what the configuration file may say.
type config struct {
	// RegistryMirrors are tried, in order, for Docker Hub images before
	// Docker Hub itself: a nearer copy, as Docker's "registry-mirrors".
	RegistryMirrors []string `json:"registry-mirrors"`
	// DefaultSubnet and DefaultBridge configure the default network,
	// "bridge" (10.77.0.0/24 on gocell0 unless they say otherwise).
	DefaultSubnet string `json:"default-subnet"`
	DefaultBridge string `json:"default-bridge"`
}

// loadConfig reads the configuration file; a missing one is empty.
func loadConfig(c *cli.Context) (config, error) {
	var cfg config
	path := c.String("config")
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return cfg, nil
	}
	if err != nil {
		return cfg, fmt.Errorf("read %s: %w", path, err)
	}
	if err := json.Unmarshal(data, &cfg); err != nil {
		return cfg, fmt.Errorf("%s is not valid JSON: %w", path, err)
	}
	return cfg, nil
}

// stores opens the image and container stores under --root.
func stores(c *cli.Context) (*image.Store, *container.Store, error) {
	root := c.String("root")
	images, err := image.Open(root)
	if err != nil {
		return nil, nil, err
	}
	containers, err := containerStore(c)
	if err != nil {
		return nil, nil, err
	}
	return images, containers, nil
}

// containerStore opens only the container store, with the networks'
// settings from the configuration file.
func containerStore(c *cli.Context) (*container.Store, error) {
	cfg, err := loadConfig(c)
	if err != nil {
		return nil, err
	}
	containers, err := container.Open(c.String("root"))
	if err != nil {
		return nil, err
	}
	containers.Network.DefaultSubnet = cfg.DefaultSubnet
	containers.Network.DefaultBridge = cfg.DefaultBridge
	return containers, nil
}

// pullOptions are the options of every pull: mirrors, progress, timeout.
func pullOptions(c *cli.Context) (image.PullOptions, error) {
	cfg, err := loadConfig(c)
	if err != nil {
		return image.PullOptions{}, err
	}
	return image.PullOptions{Mirrors: cfg.RegistryMirrors, Progress: os.Stderr, Timeout: 30 * time.Second}, nil
}

// isTerminal reports whether f is a terminal. ioctl_tty(2)
func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// needArgs checks the number of arguments of a command.
func needArgs(c *cli.Context, min int, usage string) error {
	if c.Args().Len() < min {
		return usageError("%s: %s (see gocell %s --help)", c.Command.Name, usage, c.Command.Name)
	}
	return nil
}

// shortID is the first 12 hex digits of an id, as Docker shows them.
func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// forEach runs fn on each container named on the command line and prints
// the name of each it acted on, as Docker's stop, kill, rm, pause do.
func forEach(c *cli.Context, fn func(*container.Store, string) (*container.State, error)) error {
	if err := needArgs(c, 1, "which container?"); err != nil {
		return err
	}
	containers, err := containerStore(c)
	if err != nil {
		return err
	}
	for _, ref := range c.Args().Slice() {
		st, err := fn(containers, ref)
		if err != nil {
			return err
		}
		printf("%s\n", st.Name)
	}
	return nil
}

package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	dockerconfig "github.com/docker/cli/cli/config"
	"github.com/docker/cli/cli/config/types"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/urfave/cli/v2"
)

// hubAuthKey is the key Docker files Docker Hub's credentials under.
const hubAuthKey = "https://index.docker.io/v1/"

// authKey is where credentials for server are kept, and the registry
// to check them against: Docker Hub for "" and its names.
func authKey(server string) (key string, reg name.Registry, err error) {
	server = strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(server, "https://"), "http://"), "/")
	switch server {
	case "", "docker.io", "index.docker.io", "registry-1.docker.io", "index.docker.io/v1":
		reg, err = name.NewRegistry("index.docker.io")
		return hubAuthKey, reg, err
	}
	if strings.Contains(server, "/") {
		return "", reg, usageError("%q: give a registry's HOST[:PORT], not a repository", server)
	}
	reg, err = name.NewRegistry(server, name.StrictValidation)
	if err != nil {
		return "", reg, usageError("%q: not a registry host: %v", server, err)
	}
	return server, reg, nil
}

// loginCommand is docker login: it checks the credentials against the
// registry, then keeps them where Docker does, in config.json (0600) of
// $DOCKER_CONFIG or ~/.docker, or in the credential helper it names;
// pull and push read them from there.
func loginCommand() *cli.Command {
	return &cli.Command{
		Name:      "login",
		Usage:     "log in to a registry (Docker Hub by default); push and pull use the credentials",
		ArgsUsage: "[SERVER]",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "username", Aliases: []string{"u"}, Usage: "user name"},
			&cli.StringFlag{Name: "password", Aliases: []string{"p"}, Usage: "password (seen by other users in ps: prefer --password-stdin)"},
			&cli.BoolFlag{Name: "password-stdin", Usage: "read the password from stdin"},
		},
		Action: func(c *cli.Context) error {
			key, reg, err := authKey(c.Args().First())
			if err != nil {
				return err
			}
			user, pass := c.String("username"), c.String("password")
			if c.Bool("password-stdin") {
				if pass != "" {
					return usageError("--password and --password-stdin: give one")
				}
				line, err := bufio.NewReader(os.Stdin).ReadString('\n')
				if err != nil && line == "" {
					return usageError("--password-stdin: nothing on stdin")
				}
				pass = strings.TrimRight(line, "\r\n")
			} else if pass != "" {
				fmt.Fprintln(os.Stderr, "warning: a password on the command line is seen by other users; use --password-stdin")
			}
			if user == "" || pass == "" {
				return usageError("login: give -u USER and --password-stdin (or -p PASSWORD)")
			}
			if err := checkLogin(c.Context, reg, user, pass); err != nil {
				return fmt.Errorf("login to %s: %w", reg.Name(), err)
			}
			cf := dockerconfig.LoadDefaultConfigFile(os.Stderr)
			err = cf.GetCredentialsStore(key).Store(types.AuthConfig{Username: user, Password: pass, ServerAddress: key})
			if err == nil {
				err = cf.Save()
			}
			if err != nil {
				return fmt.Errorf("keep the credentials in %s: %w", cf.Filename, err)
			}
			printf("Login Succeeded (credentials kept in %s)\n", cf.Filename)
			return nil
		},
	}
}

// checkLogin asks the registry's /v2/ with the credentials, as Docker's
// login does: a registry with bearer tokens hands one out or refuses; one
// with basic authentication answers 200 or 401.
func checkLogin(ctx context.Context, reg name.Registry, user, pass string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	auth := authn.FromConfig(authn.AuthConfig{Username: user, Password: pass})
	tr, err := transport.NewWithContext(ctx, reg, auth, http.DefaultTransport, []string{reg.Scope(transport.PullScope)})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, reg.Scheme()+"://"+reg.RegistryStr()+"/v2/", nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("the registry answered %s: wrong user name or password?", resp.Status)
	}
	return nil
}

// logoutCommand forgets what login kept for a registry.
func logoutCommand() *cli.Command {
	return &cli.Command{
		Name:      "logout",
		Usage:     "forget the credentials of a registry (Docker Hub by default)",
		ArgsUsage: "[SERVER]",
		Action: func(c *cli.Context) error {
			key, _, err := authKey(c.Args().First())
			if err != nil {
				return err
			}
			cf := dockerconfig.LoadDefaultConfigFile(os.Stderr)
			if _, ok := cf.AuthConfigs[key]; !ok && cf.CredentialsStore == "" {
				return usageError("not logged in to %s", key)
			}
			if err := cf.GetCredentialsStore(key).Erase(key); err != nil {
				return err
			}
			printf("Removing login credentials for %s\n", key)
			return nil
		},
	}
}

package credentials

import (
	"os/exec"
	"runtime"

	"github.com/docker/cli/cli/config/configfile"
)

// defaultStore returns the credential helper Docker's own client uses on
// goos when config.json names no credsStore and holds no auths: wincred on
// Windows, osxkeychain on macOS, when lookPath finds its program. Docker
// Desktop names its own (desktop) in config.json. On Linux it is none:
// Docker's client would pick pass or secretservice there, but a Cloud
// Proxy's prepull asks only the helpers config.json names.
func defaultStore(goos string, lookPath func(string) (string, error)) string {
	var name string
	switch goos {
	case "windows":
		name = "wincred"
	case "darwin":
		name = "osxkeychain"
	default:
		return ""
	}
	if _, err := lookPath("docker-credential-" + name); err != nil {
		return ""
	}
	return name
}

// credsStore returns the credsStore of cf as Docker's client reads it: the
// one cf names, else, when cf holds no auths, the system's default store.
// kind says which of the two it is, for messages.
func credsStore(cf *configfile.ConfigFile) (store, kind string) {
	if cf.CredentialsStore != "" || cf.ContainsAuth() {
		return cf.CredentialsStore, "credsStore"
	}
	return defaultStore(runtime.GOOS, exec.LookPath), "default credsStore"
}

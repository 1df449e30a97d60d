package pull

import (
	"bytes"
	"encoding/pem"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/prepull/prepull/internal/config"
	"github.com/prepull/prepull/internal/display"
	"github.com/prepull/prepull/internal/pak"
	"github.com/prepull/prepull/internal/remote"
)

// This file puts a registry's private CA where Docker Engine reads it, and
// explains an untrusted certificate. Docker Engine reads
// <certs.d>/<host[:port]>/*.crt as the CAs of a registry on every new
// connection, so an installed CA takes effect without a restart. It names
// the folder after the host exactly as the image reference spells it, port
// included, with docker.io for Docker Hub (its containerd image store reads
// certs.d/docker.io; the classic store trusts the system's CAs for Docker
// Hub). prepull installs a CA under the configured registry's canonical
// name only (pak.CanonicalRegistry), never under a spelling a pak chose.

// maxCAFile bounds a ca_file; a larger one is surely not a CA bundle.
const maxCAFile = 1 << 20

// CAPath returns where the CA of the registry host goes under certsDir.
func CAPath(certsDir, host string) string {
	return filepath.Join(certsDir, host, "ca.crt")
}

// ReadCA reads a ca_file and checks that it is PEM with at least one
// CERTIFICATE block, for a pull and for the other registry clients (mirror).
// Its errors wrap config.ErrInvalid: the configuration names a file that
// cannot serve as a CA.
func ReadCA(host, caFile string) ([]byte, error) {
	where := fmt.Sprintf("registries entry for %s: ca_file %s", host, caFile)
	f, err := os.Open(caFile)
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %w", where, config.ErrInvalid, display.WithoutPath(err))
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: %w: not a regular file", where, config.ErrInvalid)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxCAFile+1))
	switch {
	case err != nil:
		return nil, fmt.Errorf("%s: %w: %w", where, config.ErrInvalid, display.WithoutPath(err))
	case len(data) > maxCAFile:
		return nil, fmt.Errorf("%s: %w: over %d bytes, too large for a CA certificate", where, config.ErrInvalid, maxCAFile)
	}
	if !hasCertificate(data) {
		return nil, fmt.Errorf("%s: %w: no PEM CERTIFICATE block (want the CA certificate, -----BEGIN CERTIFICATE-----)", where, config.ErrInvalid)
	}
	return data, nil
}

// hasCertificate reports whether data holds at least one PEM CERTIFICATE block.
func hasCertificate(data []byte) bool {
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return false
		}
		if b.Type == "CERTIFICATE" {
			return true
		}
	}
}

// installCA writes the CA in caFile as <certsDir>/<host>/ca.crt, the file
// Docker Engine reads for that registry. The folder is made with mode 0755,
// the file is written with mode 0644 through a temporary file and a rename,
// so that the engine never reads half a file, and it is left alone when it
// already holds the same bytes. No other file in the folder is touched. It
// returns the path and whether it wrote it.
func installCA(certsDir, host, caFile string) (path string, changed bool, err error) {
	data, err := ReadCA(host, caFile)
	if err != nil {
		return "", false, err
	}
	dir := filepath.Join(certsDir, host)
	path = filepath.Join(dir, "ca.crt")
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
		return path, false, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return path, false, fmt.Errorf("install the CA of %s: %w", host, err)
	}
	// Docker reads *.crt, *.cert and *.key only: the temporary name ends in .tmp.
	tmp, err := os.CreateTemp(dir, ".ca.crt.*.tmp")
	if err != nil {
		return path, false, fmt.Errorf("install the CA of %s: %w", host, err)
	}
	defer os.Remove(tmp.Name()) // fails harmlessly after the rename
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Chmod(0o644)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return path, false, fmt.Errorf("install the CA of %s as %s: %w", host, path, err)
	}
	return path, true, nil
}

// explainCertificate turns an engine error about the registry's TLS
// certificate into one that says how to fix it. installed is the CA file
// prepull installed for t's registry, empty when it installed none; certsDir
// is where prepull installs CAs, empty when it installs none.
func explainCertificate(err error, t pak.Target, certsDir, installed string) error {
	host := engineHost(t)
	var fix string
	switch {
	case installed != "" && installed != CAPath(certsDir, host):
		fix = fmt.Sprintf("Docker Engine reads the CA for %s from %s, not from %s where prepull installed it under the configured registry's canonical name: rebuild the pak with REGISTRY=%s, or place the CA there yourself",
			host, CAPath(certsDir, host), installed, pak.CanonicalRegistry(t.Registry))
	case installed != "":
		fix = fmt.Sprintf("the CA installed from ca_file as %s does not verify it: check that ca_file holds the CA that signed the registry's certificate, and that the certificate names %s", installed, hostOnly(host))
	case certsDir != "":
		fix = fmt.Sprintf("set ca_file for it in the registries list (prepull installs it as %s), or place the CA there yourself", CAPath(certsDir, pak.CanonicalRegistry(host)))
		if pak.CanonicalRegistry(host) != host {
			fix = fmt.Sprintf("place the CA as %s, where Docker Engine reads it for the registry as the pak spells it (prepull installs a ca_file only as %s: rebuild the pak with REGISTRY=%s to use it)",
				CAPath(certsDir, host), CAPath(certsDir, pak.CanonicalRegistry(host)), pak.CanonicalRegistry(host))
		}
	default:
		fix = fmt.Sprintf("place the CA that signed it as %s, where Docker Engine reads it", CAPath(config.DefaultCertsDir, host))
	}
	return fmt.Errorf("registry %s presents %s: %s: %w", host, certificateFault(err), fix, err)
}

// certificateFault says in a few words what is wrong with the certificate
// err is about.
func certificateFault(err error) string {
	if strings.Contains(strings.ToLower(err.Error()), "unknown authority") {
		return "a certificate signed by an unknown authority"
	}
	return "a certificate Docker Engine does not accept"
}

// DesktopTrust says how to make Docker Desktop on goos trust the CA in
// caFile (empty: the CA, wherever it is): Docker Desktop reads the
// system's own trust store, not a certs.d folder, and takes in a new CA
// when it restarts. Empty for any other system (Linux, where Docker Engine
// reads certs.d). The text holds no ": ", so that a failure's cause keeps
// it whole.
func DesktopTrust(goos, caFile string) string {
	ca, file := "the CA that signed it", caFile
	if caFile != "" {
		ca = "the CA of ca_file " + caFile
	} else {
		file = "CA.crt"
	}
	switch goos {
	case "windows":
		return fmt.Sprintf("Docker Desktop trusts the CAs in Windows' certificate store, so import %s into Trusted Root Certification Authorities "+
			"(PowerShell as administrator, Import-Certificate -FilePath '%s' -CertStoreLocation Cert:\\LocalMachine\\Root), then restart Docker Desktop",
			ca, strings.ReplaceAll(file, "'", "''"))
	case "darwin":
		return fmt.Sprintf("Docker Desktop trusts the CAs in the macOS keychain, so add %s to it "+
			"(sudo security add-trusted-cert -d -r trustRoot -k /Library/Keychains/System.keychain %s), then restart Docker Desktop",
			ca, remote.Quote(file))
	}
	return ""
}

// explainDesktopCertificate turns an engine error about the registry's TLS
// certificate into one that says how to make Docker Desktop trust the CA.
func explainDesktopCertificate(err error, t pak.Target, goos, caFile string) error {
	return fmt.Errorf("registry %s presents %s: %s: %w", engineHost(t), certificateFault(err), DesktopTrust(goos, caFile), err)
}

// hostOnly drops the port from host[:port].
func hostOnly(host string) string {
	if i := strings.LastIndex(host, ":"); i > strings.LastIndex(host, "]") {
		return host[:i]
	}
	return host
}

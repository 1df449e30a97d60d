//go:build linux

package testenv_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/prepull/prepull/internal/testenv"
)

// index is what the tests read of a pushed manifest or index.
type index struct {
	MediaType string  `json:"mediaType"`
	Manifests []entry `json:"manifests"`
}

type entry struct {
	Digest      string            `json:"digest"`
	Annotations map[string]string `json:"annotations"`
	Platform    struct {
		OS           string `json:"os"`
		Architecture string `json:"architecture"`
	} `json:"platform"`
}

// getManifest fetches repo@digest from reg with its htpasswd login.
func getManifest(t *testing.T, reg *testenv.Registry, repo, digest string) index {
	t.Helper()
	req, err := http.NewRequest("GET", "http://"+reg.Addr+"/v2/"+repo+"/manifests/"+digest, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", strings.Join([]string{
		"application/vnd.docker.distribution.manifest.v2+json", "application/vnd.docker.distribution.manifest.list.v2+json",
		"application/vnd.oci.image.manifest.v1+json", "application/vnd.oci.image.index.v1+json",
	}, ", "))
	req.SetBasicAuth(reg.User, reg.Password)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s@%s: %s", repo, digest, resp.Status)
	}
	if got := resp.Header.Get("Docker-Content-Digest"); got != digest {
		t.Errorf("Docker-Content-Digest = %q, want %q", got, digest)
	}
	var m index
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestPushPlatformImagesAndIndexes(t *testing.T) {
	d := testenv.Docker(t)
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{User: "alice", Password: "s3cret"})
	config := t.TempDir()
	auth := base64.StdEncoding.EncodeToString([]byte("alice:s3cret"))
	if err := os.WriteFile(filepath.Join(config, "config.json"), []byte(`{"auths":{"`+reg.Addr+`":{"auth":"`+auth+`"}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	platformOf := func(ref string) string {
		return d.Run(t, "--config", config, "image", "inspect", "--format", "{{.Os}}/{{.Architecture}}", ref)
	}

	arm := testenv.PushPlatformImage(t, reg, "mac/adapter", "linux/arm64", "")
	if m := getManifest(t, reg, "mac/adapter", arm); m.MediaType != "application/vnd.docker.distribution.manifest.v2+json" {
		t.Errorf("single image media type %q", m.MediaType)
	}
	ref := reg.Addr + "/mac/adapter@" + arm
	d.Run(t, "--config", config, "pull", ref) // Engine 20.10 pulls a single manifest of another platform as is
	if got := platformOf(ref); got != "linux/arm64" {
		t.Errorf("pulled %s is %s, want linux/arm64", ref, got)
	}
	d.RemoveImage(t, ref)

	for _, tc := range []struct {
		name string
		opts testenv.IndexOptions
		want []string // the platforms of the entries, in order
	}{
		{"list", testenv.IndexOptions{Platforms: []string{"linux/amd64", "linux/arm64"}}, []string{"linux/amd64", "linux/arm64"}},
		{"attested", testenv.IndexOptions{Platforms: []string{"linux/amd64", "linux/arm64"}, Attestations: true},
			[]string{"linux/amd64", "linux/arm64", "unknown/unknown", "unknown/unknown"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			repo := "multi/" + tc.name
			digest := testenv.PushIndex(t, reg, repo, tc.opts)
			m := getManifest(t, reg, repo, digest)
			var got []string
			for _, e := range m.Manifests {
				got = append(got, e.Platform.OS+"/"+e.Platform.Architecture)
				if e.Platform.OS == "unknown" {
					if e.Annotations["vnd.docker.reference.type"] != "attestation-manifest" || !slices.ContainsFunc(m.Manifests[:2], func(x entry) bool {
						return x.Digest == e.Annotations["vnd.docker.reference.digest"]
					}) {
						t.Errorf("attestation entry %+v does not name an image of the index", e)
					}
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("entries %v, want %v", got, tc.want)
			}
			ref := reg.Addr + "/" + repo + "@" + digest
			d.Run(t, "--config", config, "pull", ref)
			if got := platformOf(ref); got != "linux/amd64" {
				t.Errorf("pulled %s is %s, want linux/amd64", ref, got)
			}
			d.RemoveImage(t, ref)
		})
	}

	// The Bearer scheme of a token registry works too.
	tok := testenv.StartRegistry(t, testenv.RegistryOptions{User: "alice", Password: "s3cret", TokenAuth: true})
	testenv.PushIndex(t, tok, "tok/adapter", testenv.IndexOptions{Platforms: []string{"linux/arm64", "linux/s390x"}})
}

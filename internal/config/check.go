package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// The keys a configuration file may hold, from the mapstructure tags: the
// top level (Config) and an entry of registries (Registry).
var (
	topKeys      = keysOf(reflect.TypeFor[Config]())
	registryKeys = keysOf(reflect.TypeFor[Registry]())
)

func keysOf(t reflect.Type) []string {
	var keys []string
	for f := range t.Fields() {
		if k := f.Tag.Get("mapstructure"); k != "" && k != "-" {
			keys = append(keys, k)
		}
	}
	return keys
}

// checkFile reads the configuration file's YAML before Viper does, for what
// Viper says badly: a syntax error on the line where it is (yaml reports the
// line where the enclosing block starts), a key that is not one prepull
// knows (with the key it most likely meant), and registries written as a
// map keyed by host rather than a list.
func checkFile(data []byte) error {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return syntaxError(data, err)
	}
	if len(doc.Content) == 0 {
		return nil // an empty file: defaults
	}
	top := doc.Content[0]
	if top.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: the configuration must be a mapping of keys (registries:, timeout:, ...), not %s", top.Line, kindName(top))
	}
	var errs []error
	for i := 0; i+1 < len(top.Content); i += 2 {
		k, v := top.Content[i], top.Content[i+1]
		if !slices.Contains(topKeys, strings.ToLower(k.Value)) {
			errs = append(errs, unknownKey("", k, topKeys))
			continue
		}
		key := strings.ToLower(k.Value)
		switch key {
		case "registries":
			errs = append(errs, checkRegistries(k, v)...)
			continue
		case "conf_dirs":
			errs = append(errs, checkList(key, k, v)...)
			continue
		}
		switch {
		case v.Kind != yaml.ScalarNode:
			errs = append(errs, fmt.Errorf("line %d: %s must be a single value, not %s", k.Line, key, kindName(v)))
		case v.Tag == "!!null":
		default:
			if err := checkScalar(key, v.Value); err != nil {
				errs = append(errs, fmt.Errorf("line %d: %s %s: %v", v.Line, key, strconv.Quote(v.Value), err))
			}
		}
	}
	return errors.Join(errs...)
}

// checkRegistries checks that registries is a list of mappings of known keys.
func checkRegistries(k, v *yaml.Node) []error {
	switch {
	case v.Kind == yaml.MappingNode && len(v.Content) > 0:
		host := v.Content[0].Value
		return []error{fmt.Errorf("line %d: registries is a map keyed by host (%s), but it must be a list, one entry per registry, each with its host: write\n  registries:\n    - host: %s\n      username: USER", k.Line, strconv.Quote(host), host)}
	case v.Kind == yaml.ScalarNode && v.Tag == "!!null":
		return nil
	case v.Kind != yaml.SequenceNode:
		return []error{fmt.Errorf("line %d: registries must be a list of entries (- host: ...), not %s", k.Line, kindName(v))}
	}
	var errs []error
	for i, e := range v.Content {
		where := fmt.Sprintf("registries[%d]", i)
		if e.Kind != yaml.MappingNode {
			errs = append(errs, fmt.Errorf("line %d: %s must be a mapping (host:, username:, ...), not %s", e.Line, where, kindName(e)))
			continue
		}
		for j := 0; j+1 < len(e.Content); j += 2 {
			if ek := e.Content[j]; !slices.Contains(registryKeys, strings.ToLower(ek.Value)) {
				errs = append(errs, unknownKey(where+".", ek, registryKeys))
			}
		}
	}
	return errs
}

// checkList checks that key is a list of plain values (folders, one a line
// as "- /path"), or empty.
func checkList(key string, k, v *yaml.Node) []error {
	switch {
	case v.Kind == yaml.ScalarNode && v.Tag == "!!null":
		return nil
	case v.Kind != yaml.SequenceNode:
		return []error{fmt.Errorf("line %d: %s must be a list (- /path, one a line), not %s", k.Line, key, kindName(v))}
	}
	var errs []error
	for i, e := range v.Content {
		if e.Kind != yaml.ScalarNode {
			errs = append(errs, fmt.Errorf("line %d: %s[%d] must be a path, not %s", e.Line, key, i, kindName(e)))
		}
	}
	return errs
}

// unknownKey is the error for a key prepull does not know, with the known
// key it most likely meant.
func unknownKey(prefix string, k *yaml.Node, known []string) error {
	msg := fmt.Sprintf("line %d: unknown key %s", k.Line, strconv.Quote(prefix+k.Value))
	if m := suggest(strings.ToLower(k.Value), known); len(m) > 0 {
		alts := m[len(m)-1]
		if len(m) > 1 {
			alts = strings.Join(m[:len(m)-1], ", ") + " or " + alts
		}
		msg += ": did you mean " + alts + "?"
	} else {
		msg += " (known: " + strings.Join(known, ", ") + ")"
	}
	return errors.New(msg)
}

// suggest returns the known keys that key most likely meant: those it is a
// prefix of or that are a prefix of it (registry, registries), else the
// nearest by edit distance, if near enough.
func suggest(key string, known []string) []string {
	var prefixed []string
	for _, k := range known {
		if len(key) >= 4 && (strings.HasPrefix(k, key) || strings.HasPrefix(key, k)) {
			prefixed = append(prefixed, k)
		}
	}
	if stem := strings.TrimSuffix(key, "y"); len(prefixed) == 0 && len(stem) >= 4 {
		for _, k := range known {
			if strings.HasPrefix(k, stem) {
				prefixed = append(prefixed, k)
			}
		}
	}
	if len(prefixed) > 0 {
		return prefixed
	}
	best, dist := "", len(key)/3+1
	for _, k := range known {
		if d := editDistance(key, strings.ReplaceAll(k, "_", "-")); d < dist {
			best, dist = k, d
		}
		if d := editDistance(key, k); d < dist {
			best, dist = k, d
		}
	}
	if best == "" {
		return nil
	}
	return []string{best}
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// kindName names what a YAML node is, for messages.
func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	return "the value " + strconv.Quote(n.Value)
}

// yamlLine matches the line number at the start of a YAML error.
var yamlLine = regexp.MustCompile(`^yaml: line (\d+): `)

// syntaxError explains a YAML syntax error on the line where it is. yaml
// names the line where the block that holds the error starts, so the file
// is parsed again, a line more at a time: the first line after the longest
// beginning of the file that still parses is where it goes wrong.
func syntaxError(data []byte, err error) error {
	msg := err.Error()
	m := yamlLine.FindStringSubmatch(msg)
	if m == nil || len(data) > 1<<20 {
		return fmt.Errorf("%s (not valid YAML)", strings.TrimPrefix(msg, "yaml: "))
	}
	problem := msg[len(m[0]):]
	lines := bytes.SplitAfter(data, []byte("\n"))
	good := 0 // lines of the longest beginning that parses
	var prefix []byte
	for i, l := range lines[:min(len(lines), 5000)] {
		prefix = append(prefix, l...)
		var n yaml.Node
		if yaml.Unmarshal(prefix, &n) == nil {
			good = i + 1
		}
	}
	line := good + 1
	reported, _ := strconv.Atoi(m[1])
	if line < reported || line > len(lines) {
		line = reported
	}
	hint := "not valid YAML"
	if line != reported || strings.Contains(problem, "indent") || strings.Contains(problem, "mapping values") {
		hint += fmt.Sprintf(": check the indentation of line %d and of the lines just before it, with spaces, not tabs", line)
	}
	return fmt.Errorf("line %d: %s (%s)", line, problem, hint)
}

// checkEnv checks the PREPULL_* variables that override scalar keys, so
// that a bad one is named, with its value, rather than blamed on the file.
// None of these keys holds a secret.
func checkEnv(getenv func(string) string) error {
	var errs []error
	for _, k := range topKeys {
		if _, scalar := defaults[k]; !scalar && getenv("PREPULL_"+strings.ToUpper(k)) != "" {
			// Viper would take the variable's text for the whole list. Its
			// value is not shown: it may hold what should be in files.
			errs = append(errs, fmt.Errorf("environment variable PREPULL_%s is set, but %s can only be written in the configuration file: unset it", strings.ToUpper(k), k))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(defaults)) {
		name := "PREPULL_" + strings.ToUpper(k)
		if val := getenv(name); val != "" {
			if err := checkScalar(k, val); err != nil {
				errs = append(errs, fmt.Errorf("environment variable %s=%s: %v", name, strconv.Quote(val), err))
			}
		}
	}
	return errors.Join(errs...)
}

// checkScalar checks the text of a scalar key's value, from the file or
// the environment: a duration must have its unit (Viper would read 600 as
// 600 nanoseconds), a count must be a whole number.
func checkScalar(key, val string) error {
	switch {
	case durationKeys[key]:
		if _, err := time.ParseDuration(val); err != nil {
			return errors.New("not a duration (e.g. 90s, 10m, 1h)")
		}
	case reflect.TypeOf(defaults[key]) == reflect.TypeFor[int]():
		if _, err := strconv.Atoi(val); err != nil {
			return errors.New("not a whole number")
		}
	}
	return nil
}

// durationKeys are the keys that hold durations.
var durationKeys = func() map[string]bool {
	m := map[string]bool{}
	t := reflect.TypeFor[Config]()
	for f := range t.Fields() {
		if f.Type == reflect.TypeFor[time.Duration]() {
			m[f.Tag.Get("mapstructure")] = true
		}
	}
	return m
}()

// envOverrides lists the PREPULL_* variables set for known keys, as
// NAME="value", for messages about the values they set.
func envOverrides(getenv func(string) string) []string {
	var set []string
	for _, k := range slices.Sorted(maps.Keys(defaults)) {
		name := "PREPULL_" + strings.ToUpper(k)
		if v := getenv(name); v != "" {
			set = append(set, name+"="+strconv.Quote(v))
		}
	}
	return set
}

// readFile reads the configuration file, within a size no configuration
// reaches.
func readFile(f *os.File) ([]byte, error) {
	const max = 1 << 20
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if len(data) > max {
		return nil, fmt.Errorf("larger than %d KiB: not a configuration file", max>>10)
	}
	return data, nil
}

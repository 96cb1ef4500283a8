package caddymodule

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/caddyserver/caddy/v2"
)

// resolveSecret replaces the placeholders in a configured secret and
// reports whether it had any. An unknown placeholder is an error rather
// than an empty secret; the error quotes nothing of the value, since a
// literal secret may contain braces.
func resolveSecret(repl *caddy.Replacer, raw string) (secret string, fromPlaceholder bool, err error) {
	s, err := repl.ReplaceOrErr(raw, false, true)
	if err != nil {
		return "", false, errors.New(`it contains an unrecognized placeholder; write a literal "{" as "\{"`)
	}
	return s, s != raw, nil
}

// readSecretFile reads a secret from a file, without surrounding white
// space. Errors name the file, never its contents.
func readSecretFile(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("session secret_file: %w", err)
	}
	secret := strings.TrimSpace(string(data))
	if secret == "" {
		return "", fmt.Errorf("session secret_file %s is empty", path)
	}
	return secret, nil
}

// readFallbacksFile reads fallback secrets, one per line; blank lines and
// lines starting with # are skipped.
func readFallbacksFile(path string) ([][]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("session secret_fallbacks_file: %w", err)
	}
	var secrets [][]byte
	for line := range strings.SplitSeq(string(data), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			secrets = append(secrets, []byte(line))
		}
	}
	return secrets, nil
}

// secrets resolves the configured secret and fallbacks, from the config
// and their files. literal reports a secret written in the config itself.
func (h *Handler) secrets() (secret []byte, fallbacks [][]byte, literal bool, err error) {
	return secretSources{h.Secret, h.SecretFile, h.SecretFallbacks, h.SecretFallbacksFile}.read()
}

// secretSources are where a secret and its fallbacks come from.
type secretSources struct {
	secret, secretFile string
	fallbacks          []string
	fallbacksFile      string
}

// read resolves the secret and the fallbacks. literal reports a secret
// written in the config itself. Errors name files, never secrets.
func (src secretSources) read() (secret []byte, fallbacks [][]byte, literal bool, err error) {
	repl := caddy.NewReplacer()
	current, fromPlaceholder, err := resolveSecret(repl, src.secret)
	if err != nil {
		return nil, nil, false, fmt.Errorf("session secret: %w", err)
	}
	literal = !fromPlaceholder && src.secret != ""
	if src.secretFile != "" {
		if src.secret != "" {
			return nil, nil, false, errors.New("session: set secret or secret_file, not both")
		}
		path, _, err := resolveSecret(repl, src.secretFile)
		if err != nil {
			return nil, nil, false, fmt.Errorf("session secret_file: %w", err)
		}
		if current, err = readSecretFile(path); err != nil {
			return nil, nil, false, err
		}
	}
	if current == "" {
		return nil, nil, false, errors.New("session secret is required")
	}
	for i, raw := range src.fallbacks {
		fb, fromPlaceholder, err := resolveSecret(repl, raw)
		if err != nil {
			return nil, nil, false, fmt.Errorf("session fallback secret %d: %w", i+1, err)
		}
		literal = literal || !fromPlaceholder
		fallbacks = append(fallbacks, []byte(fb))
	}
	if src.fallbacksFile != "" {
		path, _, err := resolveSecret(repl, src.fallbacksFile)
		if err != nil {
			return nil, nil, false, fmt.Errorf("session secret_fallbacks_file: %w", err)
		}
		fromFile, err := readFallbacksFile(path)
		if err != nil {
			return nil, nil, false, err
		}
		fallbacks = append(fallbacks, fromFile...)
	}
	return []byte(current), fallbacks, literal, nil
}

package sessioncore

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// DefaultHeaderPrefix is the prefix of every header of the protocol.
const DefaultHeaderPrefix = "X-Session"

// MaxMutationBytes caps the total size of the mutation headers in one
// response. Larger mutations are rejected whole.
const MaxMutationBytes = 64 << 10

// Suffixes of the response headers an upstream uses to change the session.
const (
	replaceSuffix = "-Replace"
	updateSuffix  = "-Update"
	renewSuffix   = "-Renew"
	revokeSuffix  = "-Revoke"
	statusSuffix  = "-Status"
	idSuffix      = "-Id"
)

// StatusUnavailable is the value of the status request header (X-Session-Status)
// when the session could not be opened, for example because its store is
// down: the upstream then gets an empty session that refuses changes.
const StatusUnavailable = "unavailable"

// MutationError says which mutation header was malformed and why.
type MutationError struct {
	Header string // the header's name as the upstream spelled it
	Err    error
}

func (e *MutationError) Error() string { return fmt.Sprintf("header %s: %v", e.Header, e.Err) }

func (e *MutationError) Unwrap() error { return e.Err }

// headerProtocol is how the gateway and its upstream pass the session in
// HTTP headers (shown with the default prefix):
//
//   - to the upstream, X-Session carries the whole session as JSON;
//   - from the upstream, X-Session-Replace replaces it and X-Session-Update
//     (repeatable) merge-patches it.
//
// A header belongs to the protocol when its name, lower-cased and with '_'
// and '.' read as '-', starts with the lower-cased prefix. Backends such as
// PHP, CGI and WSGI fold '_', '.' and '-' together, so every such spelling
// is the gateway's own and is removed from what clients send and from what
// clients receive.
type headerProtocol struct {
	prefix     string // as configured, e.g. "X-Session"
	normPrefix string // lower-cased, e.g. "x-session"
	replace    string // normalized name of the replace header
	update     string // normalized name of the update header
	renew      string // normalized name of the renew header
	revoke     string // normalized name of the revoke header
}

// CheckHeaderPrefix refuses a prefix the protocol cannot own: not a valid
// header name, or so short it would swallow other headers.
func CheckHeaderPrefix(prefix string) error {
	if !httpguts.ValidHeaderFieldName(prefix) {
		return fmt.Errorf("header prefix %q is not a valid header name", prefix)
	}
	// The protocol owns every header that starts with the prefix; a short
	// one such as "X" would swallow X-Forwarded-For and the like.
	if len(prefix) < 4 || strings.ContainsRune("-_.", rune(prefix[len(prefix)-1])) {
		return fmt.Errorf("header prefix %q is too broad: use at least 4 characters, not ending in a separator", prefix)
	}
	return nil
}

// newHeaderProtocol returns the protocol for prefix (see CheckHeaderPrefix).
func newHeaderProtocol(prefix string) (*headerProtocol, error) {
	if err := CheckHeaderPrefix(prefix); err != nil {
		return nil, err
	}
	norm := normalizeHeaderName(prefix)
	return &headerProtocol{
		prefix:     http.CanonicalHeaderKey(prefix),
		normPrefix: norm,
		replace:    norm + strings.ToLower(replaceSuffix),
		update:     norm + strings.ToLower(updateSuffix),
		renew:      norm + strings.ToLower(renewSuffix),
		revoke:     norm + strings.ToLower(revokeSuffix),
	}, nil
}

// SessionHeader returns the name of the request header that carries the
// session to the upstream (the prefix itself).
func (p *headerProtocol) SessionHeader() string { return p.prefix }

// StatusHeader returns the name of the request header that says the
// session is unavailable (X-Session-Status).
func (p *headerProtocol) StatusHeader() string { return p.prefix + statusSuffix }

// IDHeader returns the name of the request header that carries the ID of a
// server-side session (X-Session-Id).
func (p *headerProtocol) IDHeader() string { return p.prefix + idSuffix }

// Owns reports whether the header called name belongs to the protocol.
func (p *headerProtocol) Owns(name string) bool {
	if len(name) < len(p.normPrefix) {
		return false
	}
	for i := 0; i < len(p.normPrefix); i++ {
		if normalizeHeaderByte(name[i]) != p.normPrefix[i] {
			return false
		}
	}
	return true
}

// Strip deletes every header the protocol owns from h.
func (p *headerProtocol) Strip(h http.Header) {
	for name := range h {
		if p.Owns(name) {
			delete(h, name)
		}
	}
}

// WriteRequest removes every header the protocol owns from a request's
// headers, whatever the client sent, then sets the session header to s.
// It also takes the protocol's names out of Connection, where a client could
// list the session header as hop-by-hop to have a proxy drop it, and out of
// Trailer, where a client could announce one as a trailer.
func (p *headerProtocol) WriteRequest(h http.Header, s *Session) {
	p.Strip(h)
	p.StripFromList(h, "Connection")
	p.StripFromList(h, "Trailer")
	p.SetSessionHeader(h, s)
}

// SetSessionHeader sets the session header to s, for a caller that has
// already stripped the request as WriteRequest does.
func (p *headerProtocol) SetSessionHeader(h http.Header, s *Session) {
	h[p.prefix] = []string{s.String()}
}

// StripFromList removes the protocol's names from the comma-separated
// header h[name] (Connection, Trailer), deleting it when none remain.
func (p *headerProtocol) StripFromList(h http.Header, name string) {
	removeFromHeaderList(h, name, p.Owns)
}

// removeFromHeaderList removes the tokens drop matches from the
// comma-separated header h[name], deleting the header when none remain.
func removeFromHeaderList(h http.Header, name string, drop func(token string) bool) {
	values, ok := h[name]
	if !ok {
		return
	}
	var kept []string
	changed := false
	for _, line := range values {
		for token := range strings.SplitSeq(line, ",") {
			if token = strings.TrimSpace(token); token == "" {
				continue
			}
			if drop(token) {
				changed = true
				continue
			}
			kept = append(kept, token)
		}
	}
	switch {
	case !changed:
	case len(kept) == 0:
		delete(h, name)
	default:
		h[name] = []string{strings.Join(kept, ", ")}
	}
}

// TakeMutation reads the upstream's changes from a response's headers and
// removes every header the protocol owns, whatever the outcome. It returns
// a *MutationError when a mutation header is malformed: not a JSON object,
// nested deeper than MaxNestingDepth, more than one replacement, spelled in
// two ways, or, all together, over MaxMutationBytes. Then no part of the
// mutation is returned. A response without mutation headers gives a nil
// *Mutation, which is empty.
func (p *headerProtocol) TakeMutation(h http.Header) (*Mutation, error) {
	var replaceName, updateName, renewName, revokeName string
	var replaceValues, updateValues, renewValues, revokeValues []string
	total := 0
	var firstErr error
	for name, values := range h {
		if !p.Owns(name) {
			continue
		}
		delete(h, name)
		if firstErr != nil {
			continue // keep stripping
		}
		var kind *string
		switch normalizeHeaderName(name) {
		case p.replace:
			kind = &replaceName
			replaceValues = append(replaceValues, values...)
		case p.update:
			kind = &updateName
			updateValues = append(updateValues, values...)
		case p.renew:
			kind = &renewName
			renewValues = append(renewValues, values...)
		case p.revoke:
			kind = &revokeName
			revokeValues = append(revokeValues, values...)
		default:
			continue
		}
		if *kind != "" {
			// Two spellings of one header arrive as two map keys whose
			// relative order is lost, so the order of the patches is unknown.
			firstErr = &MutationError{Header: name, Err: fmt.Errorf("also sent as %s; send one spelling", *kind)}
			continue
		}
		*kind = name
		for _, v := range values {
			total += len(v)
		}
		if total > MaxMutationBytes {
			firstErr = &MutationError{Header: name, Err: fmt.Errorf("mutation headers exceed %d bytes", MaxMutationBytes)}
		}
	}
	if firstErr != nil {
		return nil, firstErr
	}
	if replaceName == "" && updateName == "" && renewName == "" && revokeName == "" {
		return nil, nil // as on most responses
	}
	m := new(Mutation)
	for _, v := range replaceValues {
		if err := m.SetReplace([]byte(v)); err != nil {
			return nil, &MutationError{Header: replaceName, Err: err}
		}
	}
	for _, v := range updateValues {
		if err := m.AddUpdate([]byte(v)); err != nil {
			return nil, &MutationError{Header: updateName, Err: err}
		}
	}
	for _, v := range renewValues {
		switch strings.ToLower(strings.TrimSpace(v)) {
		case "true":
			m.SetRenew()
		case "false":
		default:
			return nil, &MutationError{Header: renewName, Err: fmt.Errorf("must be true or false, not %q", v)}
		}
	}
	for _, v := range revokeValues {
		switch r := Revoke(strings.ToLower(strings.TrimSpace(v))); r {
		case RevokeOthers, RevokeAll:
			if m.revoke != RevokeNone && m.revoke != r {
				return nil, &MutationError{Header: revokeName, Err: errors.New("asks for both others and all")}
			}
			m.SetRevoke(r)
		default:
			return nil, &MutationError{Header: revokeName, Err: fmt.Errorf("must be others or all, not %q", v)}
		}
	}
	return m, nil
}

// normalizeHeaderName lower-cases name and reads '_' and '.' as '-'.
func normalizeHeaderName(name string) string {
	b := []byte(name)
	for i, c := range b {
		b[i] = normalizeHeaderByte(c)
	}
	return string(b)
}

func normalizeHeaderByte(c byte) byte {
	switch {
	case c == '_' || c == '.':
		return '-'
	case 'A' <= c && c <= 'Z':
		return c + 'a' - 'A'
	}
	return c
}

// SameHeaderName reports whether a and b name the same header for a
// backend that ignores case and folds '_' and '.' into '-' (PHP, CGI, WSGI).
func SameHeaderName(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		if normalizeHeaderByte(a[i]) != normalizeHeaderByte(b[i]) {
			return false
		}
	}
	return true
}

package caddymodule

import (
	"bufio"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// responseWriter intercepts the response on its way to the client, at the
// moment its header is written: that is when the upstream's session changes
// are read from the header map (and removed from it), and when the cookie is
// reissued. When the response is rejected, nothing of it reaches the client;
// the handler then returns an error and Caddy writes the error response.
//
// It follows the shape of Caddy's encode wrapper: 1xx responses pass through
// (stripped) without being taken for the final one, Write, ReadFrom and
// Flush before WriteHeader mean an implicit 200, and Unwrap lets
// http.ResponseController reach Hijack on the underlying writer.
type responseWriter struct {
	caddyhttp.ResponseWriterWrapper

	f finisher

	wroteHeader bool
	hijacked    bool
	rejected    error
}

// finisher is what a responseWriter reports to.
type finisher interface {
	// finish is called once, with the final status and the live header
	// map, just before the header is written. A non-nil error rejects the
	// response.
	finish(status int, h http.Header) error
	// owns reports whether a header name belongs to the protocol.
	owns(name string) bool
}

// WriteHeader sends informational responses without the protocol's
// headers; the first final status finishes the session.
func (w *responseWriter) WriteHeader(status int) {
	if w.wroteHeader {
		return
	}
	if status >= 100 && status <= 199 && status != http.StatusSwitchingProtocols {
		w.writeInformational(status)
		return
	}
	w.wroteHeader = true
	if err := w.f.finish(status, w.Header()); err != nil {
		w.rejected = err
		return
	}
	w.ResponseWriterWrapper.WriteHeader(status)
}

// writeInformational sends a 1xx response without the protocol's headers,
// then puts them back: the header map carries on to the final response,
// and a change the handler set before a 103 belongs to that response.
func (w *responseWriter) writeInformational(status int) {
	header := w.Header()
	var held http.Header
	for name, values := range header {
		if w.f.owns(name) {
			if held == nil {
				held = http.Header{}
			}
			held[name] = values
			delete(header, name)
		}
	}
	w.ResponseWriterWrapper.WriteHeader(status)
	maps.Copy(header, held)
}

// Write writes the body, or discards it once the response was rejected:
// failing the write would make reverse_proxy abort the connection, and the
// client is owed a clean error response instead.
func (w *responseWriter) Write(b []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	if w.rejected != nil {
		return len(b), nil
	}
	return w.ResponseWriterWrapper.Write(b)
}

// ReadFrom must be overridden: the embedded wrapper's ReadFrom hands the
// reader straight to the underlying writer, which would send an implicit
// 200 with headers this wrapper never saw.
func (w *responseWriter) ReadFrom(r io.Reader) (int64, error) {
	w.WriteHeader(http.StatusOK)
	if w.rejected != nil {
		return io.Copy(io.Discard, r)
	}
	return w.ResponseWriterWrapper.ReadFrom(r)
}

// FlushError flushes the underlying writer. A flush before the header would
// send it unprocessed, so the header is written first; a rejected response
// is never flushed.
func (w *responseWriter) FlushError() error {
	w.WriteHeader(http.StatusOK)
	if w.rejected != nil {
		return nil
	}
	return http.NewResponseController(&w.ResponseWriterWrapper).Flush()
}

// Hijack hands the connection over. A rejected 101 must not open the
// tunnel: the client is owed the error response. A handler that hijacks
// without writing a header first leaves the session unsaved.
func (w *responseWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if w.rejected != nil {
		return nil, nil, fmt.Errorf("connection not handed over: %w", w.rejected)
	}
	conn, brw, err := http.NewResponseController(&w.ResponseWriterWrapper).Hijack()
	if err == nil {
		w.hijacked = true
	}
	return conn, brw, err
}

// Interface guards
var (
	_ http.ResponseWriter = (*responseWriter)(nil)
	_ io.ReaderFrom       = (*responseWriter)(nil)
	_ http.Hijacker       = (*responseWriter)(nil)
)

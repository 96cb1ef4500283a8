package caddymodule

import (
	"bufio"
	"io"
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
	*caddyhttp.ResponseWriterWrapper

	// finish is called once, with the final status and the live header
	// map, just before the header is written. A non-nil error rejects the
	// response.
	finish func(status int, h http.Header) error
	// strip removes the protocol's headers from a header map.
	strip func(h http.Header)

	wroteHeader bool
	hijacked    bool
	rejected    error
}

// WriteHeader strips the protocol's headers from informational responses
// and passes them on; the first final status finishes the session.
func (w *responseWriter) WriteHeader(status int) {
	if w.wroteHeader {
		return
	}
	if status >= 100 && status <= 199 && status != http.StatusSwitchingProtocols {
		w.strip(w.Header())
		w.ResponseWriterWrapper.WriteHeader(status)
		return
	}
	w.wroteHeader = true
	if err := w.finish(status, w.Header()); err != nil {
		w.rejected = err
		return
	}
	w.ResponseWriterWrapper.WriteHeader(status)
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
	return http.NewResponseController(w.ResponseWriterWrapper).Flush()
}

// Hijack hands the connection over, for handlers that take it without
// writing a header first; the session is then not saved.
func (w *responseWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(w.ResponseWriterWrapper).Hijack()
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

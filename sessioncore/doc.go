// Package sessioncore is the session semantics of the gateway, with no
// Caddy in it: a Go port of Flask's SessionInterface and of its cookie
// rules, and the steps a reverse proxy takes with them.
//
//   - Manager (manager.go, open.go, save.go) opens a session from a
//     request's cookie and saves it into a response by Flask's rules,
//     keeping it in the cookie or, with a Store, on the server.
//   - Gateway (gateway.go) runs one request through a Manager in the
//     order that is safe: strip what clients may not send, open, hand the
//     session upstream (Arrive); take the upstream's changes, apply, save
//     (Depart).
//   - Session (session.go) is one session's values, as JSON.
//   - Codecs turn a session into a cookie value and back; each registers
//     itself by name (codec.go): securecookie.go, flask.go.
//   - Stores keep sessions on the server behind the small Store interface
//     (store.go); they live in packages of their own (memstore,
//     redisstore), and storetest is the suite each must pass.
//   - The header protocol (headers.go), merge patches (mutation.go) and
//     the one reader of the Cookie header (cookieheader.go) complete it.
package sessioncore

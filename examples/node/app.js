// A Node app behind the session gateway (examples/node/Caddyfile), with no
// npm packages. The session arrives as JSON in the X-Session request
// header; the app changes it by answering with X-Session-Update (a JSON
// merge patch) or X-Session-Replace. No cookie, no key here.
//
//   PORT=3000 node app.js
"use strict";
const http = require("node:http");

// Header values must be ASCII, and JSON.stringify leaves "ë" as it is:
// write every other character as \uXXXX, which is the same JSON.
const headerJSON = (value) =>
  JSON.stringify(value).replace(/[\u007f-\uffff]/g, (c) => "\\u" + c.charCodeAt(0).toString(16).padStart(4, "0"));

const escapeHTML = (s) =>
  String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);

async function readForm(req) {
  let body = "";
  req.setEncoding("utf8");
  for await (const chunk of req) {
    body += chunk;
    if (body.length > 64 * 1024) throw new Error("form too large");
  }
  return new URLSearchParams(body);
}

async function handle(req, res) {
  const session = JSON.parse(req.headers["x-session"] || "{}");
  const path = new URL(req.url, "http://app").pathname;

  if (req.method === "POST" && path === "/login") {
    const user = ((await readForm(req)).get("user") || "").trim();
    if (!user) return res.writeHead(400).end("A name is required.\n");
    // Log in: a permanent session, under a new ID (against session fixation).
    res.setHeader("X-Session-Update", headerJSON({ user, _permanent: true }));
    res.setHeader("X-Session-Renew", "true");
    return res.writeHead(303, { Location: "/" }).end();
  }
  if (req.method === "POST" && path === "/logout") {
    res.setHeader("X-Session-Replace", "{}"); // an empty session deletes the cookie
    return res.writeHead(303, { Location: "/" }).end();
  }
  if (path !== "/") return res.writeHead(404).end("Not found\n");

  const visits = (session.visits || 0) + 1;
  res.setHeader("X-Session-Update", headerJSON({ visits }));
  res.setHeader("Content-Type", "text/html; charset=utf-8");
  res.end(
    "<!doctype html>\n<title>Node behind the session gateway</title>\n" +
      (session.user
        ? `<p>Hello, ${escapeHTML(session.user)}! Visits: ${visits}</p>\n` +
          '<form method="post" action="/logout"><button>Log out</button></form>\n'
        : `<p>Hello, stranger. Visits: ${visits}</p>\n` +
          '<form method="post" action="/login"><input name="user" required> <button>Log in</button></form>\n'),
  );
}

http
  .createServer((req, res) =>
    handle(req, res).catch((err) => {
      console.error(err);
      if (!res.headersSent) res.writeHead(400).end("Bad request\n");
    }),
  )
  .listen(Number(process.env.PORT || 3000), "127.0.0.1");

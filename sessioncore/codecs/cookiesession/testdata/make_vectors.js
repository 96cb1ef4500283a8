// Makes vectors.json: cookies made by the real cookie-session (and its
// cookies and keygrip), pinned in integration_tests/expressapp's
// package-lock.json, and what that same middleware reads from each.
//
//     (cd ../../../../integration_tests/expressapp && npm ci)
//     node make_vectors.js > vectors.json
'use strict'
const path = require('path')
const http = require('http')
const app = path.join(__dirname, '../../../../integration_tests/expressapp/node_modules')
const express = require(path.join(app, 'express'))
const cookieSession = require(path.join(app, 'cookie-session'))
const version = (name) => require(path.join(app, name, 'package.json')).version

const current = 'express-secret-shared-with-the-gateway'
const old = 'an-older-express-secret'
const wrong = 'a-secret-neither-side-has'

// An app per cookie name and key list: /set makes the session the JSON in
// the body, /get answers the session it reads (null for none).
function start (name, keys) {
  const a = express()
  a.use(cookieSession({ name, keys }))
  a.post('/set', express.text({ type: '*/*' }), (req, res) => { req.session = JSON.parse(req.body); res.end('set') })
  a.get('/get', (req, res) => {
    const s = req.session
    res.json(s && s.isPopulated ? s : null)
  })
  return new Promise((resolve) => { const srv = a.listen(0, '127.0.0.1', () => resolve(srv)) })
}

function request (srv, method, p, cookie, body) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: srv.address().port, method, path: p, headers: Object.assign({ 'content-type': 'text/plain' }, cookie ? { cookie } : {}) }, (res) => {
      let data = ''
      res.on('data', (d) => { data += d })
      res.on('end', () => resolve({ setCookie: res.headers['set-cookie'] || [], body: data }))
    })
    req.on('error', reject)
    req.end(body)
  })
}

// make returns the value and the signature the app with keys writes for json.
async function make (name, keys, json) {
  const srv = await start(name, keys)
  const res = await request(srv, 'POST', '/set', '', json)
  srv.close()
  const get = (n) => res.setCookie.map((l) => l.split(';')[0]).find((c) => c.startsWith(n + '='))
  return { value: get(name).slice(name.length + 1), sig: get(name + '.sig').slice(name.length + 5), lines: res.setCookie }
}

async function main () {
  const reader = {}
  const read = async (name, cookie) => {
    reader[name] = reader[name] || await start(name, [current, old])
    const res = await request(reader[name], 'GET', '/get', cookie)
    return JSON.parse(res.body)
  }
  const vectors = []
  const add = async (v) => {
    let cookie = v.name_in_cookie + '=' + v.value
    if (v.sig !== null) cookie += '; ' + v.name_in_cookie + '.sig=' + v.sig
    const got = await read(v.name_in_cookie, cookie)
    v.express_reads = got === null ? null : JSON.stringify(got)
    vectors.push(v)
  }
  const sessions = [
    ['ascii', 'session', '{"user":"alice","cart":[1,2],"n":1.5,"t":true,"z":null}'],
    ['unicode', 'session', '{"name":"Zoë ☃ 𝄞","q":"\\"</script>"}'],
    ['padding', 'session', '{"a":"xy"}'],
    ['named', 'myapp', '{"user":"bob"}'],
    ['nested', 'session', '{"u":{"id":7,"roles":["a","b"]},"passport":{"user":"42"}}']
  ]
  for (const [label, name, json] of sessions) {
    const c = await make(name, [current], json)
    await add({ name: label + '/current key', cookie_name: name, name_in_cookie: name, value: c.value, sig: c.sig, set_cookie: c.lines, secret: current, fallbacks: [old], expect: 'valid', session_json: JSON.stringify(JSON.parse(json)) })
    const f = await make(name, [old], json)
    await add({ name: label + '/fallback key', cookie_name: name, name_in_cookie: name, value: f.value, sig: f.sig, set_cookie: f.lines, secret: current, fallbacks: [old], expect: 'fallback_key', session_json: JSON.stringify(JSON.parse(json)) })
    const w = await make(name, [wrong], json)
    await add({ name: label + '/wrong key', cookie_name: name, name_in_cookie: name, value: w.value, sig: w.sig, secret: current, fallbacks: [old], expect: 'bad_signature' })
    const flip = (s, i) => s.slice(0, i) + (s[i] === 'A' ? 'B' : 'A') + s.slice(i + 1)
    await add({ name: label + '/tampered value', cookie_name: name, name_in_cookie: name, value: flip(c.value, 3), sig: c.sig, secret: current, fallbacks: [old], expect: 'bad_signature' })
    await add({ name: label + '/tampered signature', cookie_name: name, name_in_cookie: name, value: c.value, sig: flip(c.sig, 5), secret: current, fallbacks: [old], expect: 'bad_signature' })
    await add({ name: label + '/missing signature', cookie_name: name, name_in_cookie: name, value: c.value, sig: null, secret: current, fallbacks: [old], expect: 'bad_signature' })
    await add({ name: label + '/signature padded', cookie_name: name, name_in_cookie: name, value: c.value, sig: c.sig + '=', secret: current, fallbacks: [old], expect: 'bad_signature' })
  }
  // The signature covers the cookie's name: a pair moved to another name
  // does not verify.
  const moved = await make('session', [current], '{"user":"eve"}')
  await add({ name: 'renamed/other cookie name', cookie_name: 'other', name_in_cookie: 'other', value: moved.value, sig: moved.sig, secret: current, fallbacks: [old], expect: 'bad_signature' })
  for (const srv of Object.values(reader)) srv.close()
  process.stdout.write(JSON.stringify({
    node: process.version,
    'cookie-session': version('cookie-session'),
    cookies: version('cookies'),
    keygrip: version('keygrip'),
    express: version('express'),
    vectors
  }, null, 1) + '\n')
}
main().catch((e) => { console.error(e); process.exit(1) })

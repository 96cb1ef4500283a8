// A minimal Express app for the integration tests: cookie-session with
// its defaults (cookie "session" and "session.sig", keygrip's HMAC-SHA1),
// the packages pinned in package-lock.json (npm ci).
//
//     EXPRESS_SECRET=... [EXPRESS_OLD_SECRET=...] node app.js <port>
//
// EXPRESS_OLD_SECRET, if set, is the second of the keys: it still opens
// sessions, as an app rotating its keys has it.
'use strict'
const express = require('express')
const cookieSession = require('cookie-session')

const keys = [process.env.EXPRESS_SECRET, process.env.EXPRESS_OLD_SECRET].filter(Boolean)
const app = express()
app.use(cookieSession({ keys }))
app.get('/express/login', (req, res) => {
  req.session.user = req.query.user
  req.session.csrf = req.query.csrf || 'csrf-' + Math.random().toString(36).slice(2)
  res.type('text').send('logged in')
})
app.get('/express/whoami', (req, res) => res.json(req.session.isPopulated ? req.session : {}))
app.get('/express/logout', (req, res) => {
  req.session = null
  res.type('text').send('logged out')
})
app.listen(Number(process.argv[2]), '127.0.0.1')

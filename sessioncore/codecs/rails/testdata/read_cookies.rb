#!/usr/bin/ruby
# Reads cookies with real Rails, for the rails codec's tests: one JSON
# request a line on stdin ({"secret", "fallbacks", "key_digest",
# "cookie_name", "cookie"}), one JSON line out: {"session": <what the
# app's cookie jar reads, or null>}.
require_relative "railsjar"

$stdin.each_line do |line|
  q = JSON.parse(line)
  env = RailsJar.env(q["secret"], fallbacks: q["fallbacks"] || [], digest: q["key_digest"] || "sha1")
  req = ActionDispatch::Request.new(Rack::MockRequest.env_for("/", "HTTP_COOKIE" => "#{q["cookie_name"]}=#{q["cookie"]}").merge(env))
  puts JSON.generate({ session: req.cookie_jar.encrypted[q["cookie_name"]] })
end

#!/usr/bin/ruby
# Known-answer vectors for the rails codec, made by real Rails.
#
# Run with Debian's own ruby and Rails (6.1.7 on Debian 12: apt-get install
# ruby-actionpack ruby-activesupport ruby-rack):
#
#     /usr/bin/ruby sessioncore/codecs/rails/testdata/make_vectors.rb > sessioncore/codecs/rails/testdata/vectors.json
#
# The clock and the IVs are pinned, so the output is reproducible. Every
# cookie is the Set-Cookie value of a request through Rails' own
# ActionDispatch::Cookies and ActionDispatch::Session::CookieStore; the
# tampered ones are such cookies with one byte changed.
require_relative "railsjar"

TS = 1_700_000_000 # 2023-11-14T22:13:20Z
EXPIRE_AFTER = 14 * 24 * 3600
SECRET = "dev-secret-key-base-for-vectors-" + "0123456789abcdef" * 6
OLD_SECRET = "old-secret-key-base-for-vectors-" + "fedcba9876543210" * 6
NAME = "_app_session"

# A pinned clock, and IVs from a counter.
class << Time
  def now
    at(TS).utc
  end
end
module CountingIV
  @@n = 0
  def random_iv
    @@n += 1
    self.iv = [@@n].pack("N").rjust(iv_len, "\0")
  end
end
OpenSSL::Cipher.prepend(CountingIV)
# And session IDs from a counter (Rack's generate_sid takes SecureRandom.hex).
module CountingHex
  @@n = 0
  def hex(n = 16)
    @@n += 1
    format("%0#{2 * n}x", @@n)
  end
end
SecureRandom.singleton_class.prepend(CountingHex)

# The value of the session cookie a request through Rails' stack sets, after
# fill(session) ran in the app.
def rails_cookie(fill, secret: SECRET, digest: "sha1", name: NAME, serializer: :json, metadata: true, **session_options)
  app = lambda { |env| fill.call(env["rack.session"]); [200, { "Content-Type" => "text/plain" }, ["ok"]] }
  env = RailsJar.env(secret, digest: digest, serializer: serializer, metadata: metadata)
  res = Rack::MockRequest.new(RailsJar.stack(app, name, env, **session_options)).get("/")
  Array(res.headers["Set-Cookie"]).join("\n").split("\n").each do |line|
    k, v = line.split(";", 2)[0].split("=", 2)
    return v if k == name
  end
  raise "no session cookie"
end

def setter(values)
  lambda { |s| values.each { |k, v| s[k] = v } }
end

# Changes the character at i of a value's raw form to another one of the
# same base64 alphabet, keeping the escaping.
def tamper(value, i)
  raw = Rack::Utils.unescape(value)
  raw[i] = raw[i] == "A" ? "B" : "A"
  Rack::Utils.escape(raw)
end

VECTORS = []

def valid(name, cookie, secret: SECRET, fallbacks: [], digest: "sha1", cookie_name: NAME, now: TS, opened_with: secret)
  payload = RailsJar.open(cookie, cookie_name, opened_with, digest) || Rack::Utils.unescape(cookie).then { nil }
  payload ||= begin
    # A cookie without metadata: Rails' second, purpose-less parse.
    enc = ActiveSupport::MessageEncryptor.new(RailsJar.key(opened_with, digest), cipher: "aes-256-gcm",
                                              serializer: ActiveSupport::MessageEncryptor::NullSerializer)
    enc.decrypt_and_verify(Rack::Utils.unescape(cookie))
  end
  # What the app's own cookie jar reads, through the rotations.
  env = RailsJar.env(secret, fallbacks: fallbacks, digest: digest)
  req = ActionDispatch::Request.new(Rack::MockRequest.env_for("/", "HTTP_COOKIE" => "#{cookie_name}=#{cookie}").merge(env))
  read = req.cookie_jar.encrypted[cookie_name]
  raise "#{name}: Rails does not read its own cookie" unless read == JSON.parse(payload)
  VECTORS << { name: name, secret: secret, fallbacks: fallbacks, key_digest: digest, cookie_name: cookie_name,
               cookie: cookie, now: now, expect: "valid", payload_json: payload }
end

def rejected(name, cookie, expect, secret: SECRET, fallbacks: [], digest: "sha1", cookie_name: NAME, now: TS)
  env = RailsJar.env(secret, fallbacks: fallbacks, digest: digest)
  req = ActionDispatch::Request.new(Rack::MockRequest.env_for("/", "HTTP_COOKIE" => "#{cookie_name}=#{cookie}").merge(env))
  if now == TS
    read = begin
      req.cookie_jar.encrypted[cookie_name]
    rescue JSON::ParserError
      nil # the JSON serializer cannot read it: Rails raises, the gateway starts afresh
    end
    raise "#{name}: Rails reads #{read.inspect}" unless read.nil?
  end
  VECTORS << { name: name, secret: secret, fallbacks: fallbacks, key_digest: digest, cookie_name: cookie_name,
               cookie: cookie, now: now, expect: expect }
end

login = setter("user_id" => 42, "name" => "alice", "_csrf_token" => "Hk0Sx8VZ5a0nAqL2mW3dVg8n2mYjM8mU0lT4ZqkR8gE=")
simple = rails_cookie(login)
valid("simple", simple)
valid("json_values", rails_cookie(setter("f" => 2.5, "big" => 18446744073709551617, "neg" => -3, "t" => true, "no" => false,
                                         "nil" => nil, "s" => "", "a" => [1, [2, { "b" => "c" }]], "h" => { "x" => { "y" => 1 } })))
valid("html_and_unicode", rails_cookie(setter("m" => "<b>Zoë & 😀 中文</b>", "ls" => "\u2028\u2029", "ctl" => "tab\there\x7f")))
valid("symbol_keys_and_values", rails_cookie(setter(role: :admin, "when" => Time.at(TS + 60).utc)))
expiring = rails_cookie(login, expire_after: EXPIRE_AFTER)
valid("expire_after", expiring)
valid("expire_after_last_millisecond", expiring, now: TS + EXPIRE_AFTER - 1)
valid("fallback_key", rails_cookie(setter("user_id" => 7), secret: OLD_SECRET), fallbacks: [OLD_SECRET], opened_with: OLD_SECRET)
valid("second_fallback_key", rails_cookie(setter("user_id" => 8), secret: OLD_SECRET),
      fallbacks: ["another-old-secret-key-base-" + "x" * 100, OLD_SECRET], opened_with: OLD_SECRET)
valid("sha256_key_digest", rails_cookie(login, digest: "sha256"), digest: "sha256")
valid("sha256_fallback_key", rails_cookie(setter("user_id" => 9), secret: OLD_SECRET, digest: "sha256"),
      fallbacks: [OLD_SECRET], digest: "sha256", opened_with: OLD_SECRET)
valid("short_secret", rails_cookie(login, secret: "short"), secret: "short")
valid("no_metadata", rails_cookie(login, metadata: false))
valid("other_cookie_name", rails_cookie(login, name: "_other_session"), cookie_name: "_other_session")

rejected("expired", expiring, "expired", now: TS + EXPIRE_AFTER)
rejected("expired_long_ago", expiring, "expired", now: TS + 10 * EXPIRE_AFTER)
rejected("wrong_purpose", rails_cookie(login, name: "_other_session"), "bad_signature")
rejected("tampered_ciphertext", tamper(simple, 3), "bad_signature")
rejected("tampered_iv", tamper(simple, Rack::Utils.unescape(simple).index("--") + 3), "bad_signature")
rejected("tampered_tag", tamper(simple, Rack::Utils.unescape(simple).rindex("--") + 3), "bad_signature")
rejected("truncated_tag", Rack::Utils.escape(Rack::Utils.unescape(simple)[0..-6] + "=="), "bad_signature")
rejected("no_tag", Rack::Utils.escape(Rack::Utils.unescape(simple).rpartition("--")[0]), "bad_signature")
rejected("wrong_secret", simple, "bad_signature", secret: OLD_SECRET)
rejected("fallback_not_configured", rails_cookie(setter("user_id" => 7), secret: OLD_SECRET), "bad_signature")
rejected("sha1_cookie_sha256_codec", simple, "bad_signature", digest: "sha256")
rejected("sha256_cookie_sha1_codec", rails_cookie(login, digest: "sha256"), "bad_signature")
rejected("marshal_serialized", rails_cookie(login, serializer: :marshal), "undecodable")
rejected("marshal_serialized_fallback_key", rails_cookie(login, serializer: :marshal, secret: OLD_SECRET), "undecodable",
         fallbacks: [OLD_SECRET])
rejected("garbage", "not-a-rails-cookie", "bad_signature")

puts JSON.pretty_generate({ rails: ActionPack.version.to_s, rack: Rack.release, ruby: RUBY_VERSION, vectors: VECTORS })

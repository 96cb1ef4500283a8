# Debian's own Rails (ruby-actionpack, ruby-activesupport 6.1 on Debian 12),
# configured as a Rails 6.1 application with config.load_defaults 6.1 and the
# JSON cookie serializer configures its cookie jar. Shared by make_vectors.rb,
# read_cookies.rb and the integration tests' app.
require "json"
require "action_dispatch"
require "active_support/all"
require "active_support/messages/rotation_configuration"
require "action_dispatch/middleware/session/cookie_store"

module RailsJar
  SALT = "authenticated encrypted cookie" # authenticated_encrypted_cookie_salt
  ITERATIONS = 1000                       # Rails::Application#key_generator

  # A Rails 7 KeyGenerator with hash_digest_class, for Rails 6.1, whose own
  # always uses PBKDF2-HMAC-SHA1.
  class DigestKeyGenerator
    def initialize(secret, digest)
      @secret, @digest = secret, digest
    end

    def generate_key(salt, key_size = 64)
      OpenSSL::PKCS5.pbkdf2_hmac(@secret, salt, ITERATIONS, key_size, OpenSSL::Digest.new(@digest))
    end
  end

  def self.key_generator(secret, digest = "sha1")
    gen = if digest == "sha1"
      ActiveSupport::KeyGenerator.new(secret, iterations: ITERATIONS)
    else
      DigestKeyGenerator.new(secret, digest)
    end
    ActiveSupport::CachingKeyGenerator.new(gen)
  end

  def self.key(secret, digest = "sha1")
    key_generator(secret, digest).generate_key(SALT, ActiveSupport::MessageEncryptor.key_len("aes-256-gcm"))
  end

  # The env a Rails application's request carries for its cookie jar.
  # Fallback secrets are rotated in as config.action_dispatch.cookies_rotations
  # does it: rotate :encrypted, <key derived from the old secret_key_base>.
  def self.env(secret, fallbacks: [], digest: "sha1", serializer: :json, metadata: true)
    rotations = ActiveSupport::Messages::RotationConfiguration.new
    fallbacks.each { |old| rotations.rotate :encrypted, key(old, digest) }
    {
      "action_dispatch.key_generator" => key_generator(secret, digest),
      "action_dispatch.secret_key_base" => secret,
      "action_dispatch.authenticated_encrypted_cookie_salt" => SALT,
      "action_dispatch.use_authenticated_cookie_encryption" => true,
      "action_dispatch.encrypted_cookie_cipher" => "aes-256-gcm",
      "action_dispatch.use_cookies_with_metadata" => metadata,
      "action_dispatch.cookies_serializer" => serializer,
      "action_dispatch.cookies_rotations" => rotations,
      "action_dispatch.cookies_same_site_protection" => proc { :lax },
    }
  end

  # The session middleware stack of a Rails app: cookies, then the cookie store.
  def self.stack(app, cookie_name, env, **session_options)
    inner = ActionDispatch::Cookies.new(ActionDispatch::Session::CookieStore.new(app, key: cookie_name, **session_options))
    lambda { |e| inner.call(e.merge(env)) }
  end

  # The raw serialized session a cookie value (as the Cookie header has it)
  # holds, decrypted and verified by Rails' MessageEncryptor for the purpose
  # cookie.<name>, or nil.
  def self.open(value, name, secret, digest = "sha1")
    enc = ActiveSupport::MessageEncryptor.new(key(secret, digest), cipher: "aes-256-gcm",
                                              serializer: ActiveSupport::MessageEncryptor::NullSerializer)
    enc.decrypt_and_verify(Rack::Utils.unescape(value), purpose: "cookie.#{name}")
  rescue ActiveSupport::MessageEncryptor::InvalidMessage
    nil
  end
end

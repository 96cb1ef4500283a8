#!/usr/bin/ruby
# A minimal Rails app for the integration tests: Debian's own ActionPack
# session middleware (ActionDispatch::Cookies and Session::CookieStore),
# configured as a Rails 6.1 app (config.load_defaults 6.1, the JSON cookie
# serializer, the encrypted cookie store), served by WEBrick.
#
#     /usr/bin/ruby app.rb <port>
#
# SECRET_KEY_BASE is secret_key_base; OLD_SECRET_KEY_BASE, if set, is
# rotated in (cookies_rotations), as an app does when it changes keys.
require "webrick"
require "rack/handler/webrick"
require_relative "../../sessioncore/codecs/rails/testdata/railsjar"

env = RailsJar.env(ENV.fetch("SECRET_KEY_BASE"), fallbacks: [ENV["OLD_SECRET_KEY_BASE"]].compact.reject(&:empty?))

app = lambda do |e|
  req = ActionDispatch::Request.new(e)
  session = req.session
  case req.path_info
  when "/rails/login"
    session[:user] = req.params["user"]
    session[:_csrf_token] ||= SecureRandom.base64(32)
    [200, { "Content-Type" => "text/plain" }, ["logged in"]]
  when "/rails/whoami"
    [200, { "Content-Type" => "application/json" }, [JSON.generate(session.to_hash)]]
  when "/rails/logout"
    req.reset_session
    [200, { "Content-Type" => "text/plain" }, ["logged out"]]
  else
    [404, { "Content-Type" => "text/plain" }, ["not found"]]
  end
end

Rack::Handler::WEBrick.run(RailsJar.stack(app, "_app_session", env),
                           Host: "127.0.0.1", Port: Integer(ARGV.fetch(0)),
                           AccessLog: [], Logger: WEBrick::Log.new($stderr, WEBrick::Log::WARN))

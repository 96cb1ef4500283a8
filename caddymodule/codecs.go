package caddymodule

// The codecs beyond sessioncore's own. Each registers itself by name when
// its package is imported (sessioncore.RegisterCodec, in an init func), so
// importing it here once is all it takes for `codec <name>` to find it.
import (
	_ "github.com/sessiongate/caddy-session/sessioncore/codecs/cookiesession"
	_ "github.com/sessiongate/caddy-session/sessioncore/codecs/django"
	_ "github.com/sessiongate/caddy-session/sessioncore/codecs/rails"
)

// Verifies the gateway's session assertion as an upstream would, with the
// jose library: the key from the gateway's JWKS (by the token's kid), the
// signature, exp and aud. Prints the claims as JSON, or REFUSED and the
// error's code.
//
//   node verify.mjs <jwks URL> <token> <audience>
import { createRemoteJWKSet, jwtVerify } from "jose";

const [jwksURL, token, audience] = process.argv.slice(2);
try {
  const keys = createRemoteJWKSet(new URL(jwksURL));
  const { payload } = await jwtVerify(token, keys, { audience, requiredClaims: ["exp", "iat", "iss", "aud"] });
  console.log(JSON.stringify(payload));
} catch (e) {
  console.log("REFUSED", e.code || e.name);
}

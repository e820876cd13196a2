// openid-client's authorization code flow against a Gatehouse issuer, as a
// relying party independent of Gatehouse's Go code: the Go tests play the
// person (login and consent) and hand back what the browser brought.
//
// It prints one JSON line with the authorization URL, reads one JSON line
// from stdin with what came back to the redirect URI ({"url": ...} for the
// query response mode, {"body": ...} for form_post's POST), redeems the
// code, reads userinfo, and prints one JSON line with the result (or the
// error).
//
// Environment:
//   ISSUER, CLIENT_ID, REDIRECT_URI, SCOPE
//   CLIENT_SECRET   client_secret_post (openid-client's default), or with
//                   AUTH=basic client_secret_basic
//   PRIVATE_JWK     a private JWK (ES256) instead: private_key_jwt
//   PAR=1           push the request (buildAuthorizationUrlWithPAR)
//   JAR=1           send it as a request object signed with PRIVATE_JWK
//                   (buildAuthorizationUrlWithJAR)
//   RESPONSE_MODE   e.g. form_post
//   CLAIMS          the claims request parameter (JSON)
import { webcrypto } from 'node:crypto'
import { createInterface } from 'node:readline'

if (!globalThis.crypto) {
  globalThis.crypto = webcrypto
}
const client = await import('openid-client')

const env = process.env
const print = (o) => process.stdout.write(JSON.stringify(o) + '\n')

async function signingKey() {
  const jwk = JSON.parse(env.PRIVATE_JWK)
  const key = await crypto.subtle.importKey('jwk', jwk, { name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign'])
  return { key, kid: jwk.kid }
}

async function clientAuth() {
  if (env.PRIVATE_JWK) {
    return client.PrivateKeyJwt(await signingKey())
  }
  if (env.CLIENT_SECRET) {
    return env.AUTH === 'basic' ? client.ClientSecretBasic(env.CLIENT_SECRET) : client.ClientSecretPost(env.CLIENT_SECRET)
  }
  return client.None()
}

async function nextLine() {
  const rl = createInterface({ input: process.stdin })
  for await (const line of rl) {
    rl.close()
    return JSON.parse(line)
  }
  throw new Error('stdin ended before the response came back')
}

try {
  const options = new URL(env.ISSUER).protocol === 'http:' ? { execute: [client.allowInsecureRequests] } : undefined
  const config = await client.discovery(new URL(env.ISSUER), env.CLIENT_ID, undefined, await clientAuth(), options)
  const codeVerifier = client.randomPKCECodeVerifier()
  const state = client.randomState()
  const nonce = client.randomNonce()
  let params = {
    redirect_uri: env.REDIRECT_URI,
    scope: env.SCOPE,
    code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
    code_challenge_method: 'S256',
    state,
    nonce,
  }
  if (env.RESPONSE_MODE) params.response_mode = env.RESPONSE_MODE
  if (env.CLAIMS) params.claims = env.CLAIMS

  let url
  if (env.JAR === '1') {
    url = await client.buildAuthorizationUrlWithJAR(config, params, await signingKey())
    params = url.searchParams
  }
  if (env.PAR === '1') {
    url = await client.buildAuthorizationUrlWithPAR(config, params)
  } else if (!url) {
    url = client.buildAuthorizationUrl(config, params)
  }
  print({ authorization_url: url.href })

  const back = await nextLine()
  const current = back.body !== undefined
    ? new Request(env.REDIRECT_URI, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: back.body })
    : new URL(back.url)
  const tokens = await client.authorizationCodeGrant(config, current, { pkceCodeVerifier: codeVerifier, expectedState: state, expectedNonce: nonce })
  const claims = tokens.claims()
  const userinfo = claims ? await client.fetchUserInfo(config, tokens.access_token, claims.sub) : undefined
  print({ access_token: tokens.access_token, scope: tokens.scope, claims, userinfo })
} catch (e) {
  print({ error: e.error ?? e.code ?? 'exception', error_description: e.error_description ?? e.message })
  process.exitCode = 1
}

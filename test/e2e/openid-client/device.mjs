// openid-client's device flow (RFC 8628) against a Gatehouse issuer, for
// test/e2e/device_test.go: an OAuth client independent of Gatehouse's Go
// code. It prints one JSON line with the device authorization response,
// polls until the person decides in the browser, then prints one JSON line
// with the tokens and the ID token's claims, or with the error.
//
//   ISSUER=http://127.0.0.1:8080 CLIENT_ID=ns.cli SCOPE="openid orders:read" node device.mjs
import { webcrypto } from 'node:crypto'

// openid-client needs Web Crypto as a global, which Node.js has from
// version 19 on; Debian 12's Node.js 18 has it only as a module.
if (!globalThis.crypto) {
  globalThis.crypto = webcrypto
}
const client = await import('openid-client')

const { ISSUER, CLIENT_ID, SCOPE } = process.env
const print = (o) => process.stdout.write(JSON.stringify(o) + '\n')

try {
  const options = new URL(ISSUER).protocol === 'http:' ? { execute: [client.allowInsecureRequests] } : undefined
  const config = await client.discovery(new URL(ISSUER), CLIENT_ID, undefined, client.None(), options)
  const da = await client.initiateDeviceAuthorization(config, { scope: SCOPE })
  print({
    user_code: da.user_code,
    verification_uri: da.verification_uri,
    verification_uri_complete: da.verification_uri_complete,
    expires_in: da.expires_in,
    interval: da.interval,
  })
  const tokens = await client.pollDeviceAuthorizationGrant(config, da)
  print({
    access_token: tokens.access_token,
    refresh_token: tokens.refresh_token,
    id_token: tokens.id_token,
    scope: tokens.scope,
    claims: tokens.claims(),
  })
} catch (e) {
  print({ error: e.error ?? e.code ?? 'exception', error_description: e.error_description ?? e.message })
  process.exitCode = 1
}

/**
 * The clients, user and keys that the interoperability tests (one file per independent client
 * library) drive Flowgate's flows with.
 */
import { randomBytes } from 'node:crypto';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import { CLI_ACTOR } from '../../src/audit/service.js';
import { JWT_BEARER } from '../../src/oauth/grants/jwt-bearer.js';
import { TOKEN_EXCHANGE } from '../../src/endpoints/token-exchange.js';
import { createClient, createUser, type TestClient, type TestUser } from './oauth.js';
import type { TestEnv } from './server.js';

export { JWT_BEARER, TOKEN_EXCHANGE };
export const API_KEY_TOKEN_TYPE = 'urn:flowgate:params:oauth:token-type:api-key';

export interface InteropFixtures {
  orgId: string;
  user: TestUser;
  /** authorization_code + refresh_token + client_credentials, client_secret_basic. */
  web: TestClient;
  /** client_credentials, client_secret_post. */
  post: TestClient;
  /** client_credentials + jwt-bearer, private_key_jwt (ES256 key). */
  service: TestClient;
  /** jwt-bearer with a client secret for authentication and a registered key for its assertions. */
  secretService: TestClient & { privateKey: CryptoKey; publicJwk: JWK };
  /** A resource server: may introspect (client_secret_basic). */
  rs: TestClient;
  /** An API key of the organization (workflows:read runs:read) and its id. */
  apiKey: { key: string; id: string };
  /** Signs an RFC 7523 assertion for a client, with a fresh jti unless `jti: null`. */
  assertion(c: { clientId: string; privateKey?: CryptoKey; publicJwk?: JWK }, opts?: { aud?: string; jti?: string | null; key?: CryptoKey; exp?: string }): Promise<string>;
}

export async function interopFixtures(env: TestEnv): Promise<InteropFixtures> {
  const orgId = (await env.server.services.accounts.createOrganization(CLI_ACTOR, { name: `Interop ${randomBytes(3).toString('hex')}`, plan: 'enterprise' })).id;
  const user = await createUser(env, { orgIds: [orgId] });
  const platform = 'workflows:read workflows:execute runs:read';
  const web = await createClient(env, {
    orgId,
    grantTypes: ['authorization_code', 'refresh_token', 'client_credentials'],
    scope: `openid offline_access email ${platform}`,
  });
  const post = await createClient(env, { orgId, grantTypes: ['client_credentials'], redirectUris: [], authMethod: 'client_secret_post', scope: 'workflows:read runs:read' });
  const service = await createClient(env, { orgId, grantTypes: ['client_credentials', JWT_BEARER], redirectUris: [], authMethod: 'private_key_jwt', scope: 'workflows:read workflows:execute' });
  const pair = await generateKeyPair('ES256', { extractable: true });
  const publicJwk: JWK = { ...(await exportJWK(pair.publicKey)), alg: 'ES256', use: 'sig', kid: `k-${randomBytes(4).toString('hex')}` };
  const secretClient = await createClient(env, {
    orgId,
    grantTypes: [JWT_BEARER, TOKEN_EXCHANGE],
    redirectUris: [],
    authMethod: 'client_secret_basic',
    jwks: { keys: [publicJwk as Record<string, unknown>] },
    scope: 'workflows:read',
  });
  const rs = await createClient(env, { orgId, grantTypes: ['client_credentials'], redirectUris: [], introspect: true, scope: 'workflows:read' });
  const created = await env.server.services.apiKeys.create({ actor: CLI_ACTOR }, orgId, { name: 'interop', scopes: ['workflows:read', 'runs:read'] } as never);
  return {
    orgId,
    user,
    web,
    post,
    service,
    secretService: { ...secretClient, privateKey: pair.privateKey, publicJwk },
    rs,
    apiKey: { key: created.key, id: created.apiKey.id },
    assertion: (c, opts = {}) => {
      const jwt = new SignJWT({})
        .setProtectedHeader({ alg: 'ES256', ...(c.publicJwk?.kid && { kid: c.publicJwk.kid }) })
        .setIssuer(c.clientId)
        .setSubject(c.clientId)
        .setAudience(opts.aud ?? env.url)
        .setIssuedAt()
        .setExpirationTime(opts.exp ?? '2m');
      if (opts.jti !== null) jwt.setJti(opts.jti ?? randomBytes(12).toString('base64url'));
      return jwt.sign(opts.key ?? c.privateKey!);
    },
  };
}

import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { exportPKCS8, type CryptoKey } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestEnv } from './support/server.js';
import { followAuthorization, type TestClient } from './support/oauth.js';
import { projectRoot } from './support/process.js';
import { interopFixtures, type InteropFixtures } from './support/interop.js';

/**
 * Flowgate's flows driven by Python's Authlib (OAuth2Session, AssertionSession, PrivateKeyJWT), an
 * independent client implementation in another language: test/interop/authlib_flows.py. CI installs
 * Debian's python3-authlib and python3-requests (.ci/run).
 */
const PYTHON = process.env.AUTHLIB_PYTHON ?? '/usr/bin/python3';
const SCRIPT = path.join(projectRoot, 'test/interop/authlib_flows.py');

let env: TestEnv;
let f: InteropFixtures;
let results: Record<string, { ok: boolean; error?: string; [k: string]: unknown }>;

/** Runs the script without blocking: the Flowgate it talks to serves from this same process. */
async function python(phase: string, input: unknown): Promise<unknown> {
  const child = spawn(PYTHON, [SCRIPT, phase], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c) => (stdout += c));
  child.stderr.on('data', (c) => (stderr += c));
  child.stdin.end(JSON.stringify(input));
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
  clearTimeout(timer);
  if (code !== 0) throw new Error(`authlib_flows.py ${phase} failed (${code}):\n${stderr}`);
  return JSON.parse(stdout);
}

const keyed = async (c: TestClient & { privateKey?: CryptoKey }) => ({
  client_id: c.clientId,
  client_secret: c.clientSecret,
  private_key_pem: c.privateKey ? await exportPKCS8(c.privateKey) : undefined,
  kid: c.publicJwk?.kid,
});

beforeAll(async () => {
  const usable =
    existsSync(PYTHON) && spawnSync(PYTHON, ['-c', 'import authlib, requests'], { encoding: 'utf8' }).status === 0;
  if (!usable) {
    throw new Error(`${PYTHON} with Authlib and requests is needed: apt-get install -y python3-authlib python3-requests (or set AUTHLIB_PYTHON)`);
  }
  env = await startTestServer();
  f = await interopFixtures(env);
  const doc = (await (await fetch(`${env.url}/.well-known/openid-configuration`)).json()) as Record<string, string>;
  const cfg = {
    authorization_endpoint: doc.authorization_endpoint,
    token_endpoint: doc.token_endpoint,
    introspection_endpoint: doc.introspection_endpoint,
    revocation_endpoint: doc.revocation_endpoint,
    web: { ...(await keyed(f.web)), redirect_uri: f.web.redirectUri },
    post: await keyed(f.post),
    service: await keyed(f.service),
    secret_service: await keyed(f.secretService),
    rs: await keyed(f.rs),
    api_key: f.apiKey.key,
  };
  const started = (await python('authorize', cfg)) as { url: string; state: string; verifier: string };
  const callback = await followAuthorization(env, new URL(started.url), f.user, { orgId: f.orgId });
  results = (await python('flows', { ...cfg, ...started, callback: callback.href })) as typeof results;
}, 120_000);
afterAll(async () => {
  await env?.close();
});

const passed = (name: string) => {
  const r = results[name];
  expect(r, `${name} was not run`).toBeDefined();
  expect(r.error, name).toBeUndefined();
  expect(r.ok).toBe(true);
  return r as Record<string, any>;
};

describe('Authlib (Python)', () => {
  it('authorization code with PKCE, then a rotating refresh', () => {
    const r = passed('code_pkce_refresh');
    expect(r).toMatchObject({ has_refresh_token: true, rotated: true, introspection: { active: true, sub: f.user.id, org_id: f.orgId } });
  });

  it('client credentials with client_secret_basic, client_secret_post (no scope: the registered ones) and private_key_jwt', () => {
    expect(passed('client_credentials_basic')).toMatchObject({ scope: 'workflows:read', introspection: { active: true, client_id: f.web.clientId } });
    expect(passed('client_credentials_post_default_scope').scope.split(' ').sort()).toEqual(['runs:read', 'workflows:read']);
    expect(passed('client_credentials_private_key_jwt').scope).toBe('workflows:execute');
  });

  it('JWT-bearer with private_key_jwt or a client secret alongside, and AssertionSession alone', () => {
    expect(passed('jwt_bearer_with_private_key_jwt')).toMatchObject({ scope: 'workflows:read', introspection: { active: true, client_id: f.service.clientId } });
    expect(passed('jwt_bearer_with_client_secret_basic').scope).toBe('workflows:read');
    expect(passed('jwt_bearer_assertion_session').scope).toBe('workflows:read');
  });

  it('JWT-bearer errors: a missing jti or a replay is invalid_grant saying why, a wrong secret invalid_client', () => {
    const r = passed('jwt_bearer_errors');
    expect(r.no_jti.error).toBe('invalid_grant');
    expect(r.no_jti.description).toMatch(/jti/);
    expect(r.replay.error).toBe('invalid_grant');
    expect(r.bad_secret.error).toBe('invalid_client');
  });

  it('token exchange: the issued token is the authenticating client\'s and carries key_id; an inactive key is invalid_request', () => {
    const r = passed('token_exchange');
    expect(r.introspection).toMatchObject({ active: true, client_id: f.secretService.clientId, key_id: f.apiKey.id });
    expect(r.inactive.error).toBe('invalid_request');
  });

  it('introspection and revocation', () => {
    const r = passed('introspection_revocation');
    expect(r.before).toMatchObject({ active: true });
    expect(r.revocation_status).toBe(200);
    expect(r.after).toEqual({ active: false });
    expect(r.api_key).toMatchObject({ active: true, credential_type: 'api_key', key_id: f.apiKey.id });
  });
});


import http from 'node:http';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestEnv } from './support/server.js';
import { createClient } from './support/oauth.js';

let env: TestEnv;
beforeAll(async () => {
  env = await startTestServer();
});
afterAll(async () => env?.close());

interface Pending {
  finish(): void;
  response: Promise<{ status: number; body: string }>;
}

/**
 * A real token request whose body arrives in two parts: the server has the request (headers and half
 * the body) in flight until finish() sends the rest.
 */
function slowTokenRequest(url: string, clientId: string, clientSecret: string): Promise<Pending> {
  const body = new URLSearchParams({ grant_type: 'client_credentials' }).toString();
  const half = Math.floor(body.length / 2);
  return new Promise((resolveStarted, rejectStarted) => {
    const req = http.request(`${url}/token`, {
      method: 'POST',
      agent: false,
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        'content-length': String(body.length),
        authorization: `Basic ${Buffer.from(`${clientId}:${clientSecret}`).toString('base64')}`,
      },
    });
    const response = new Promise<{ status: number; body: string }>((resolve, reject) => {
      req.on('response', (res) => {
        let text = '';
        res.on('data', (c) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      });
      req.on('error', reject);
    });
    req.on('error', rejectStarted);
    req.write(body.slice(0, half), () => {
      // Let the server parse the headers and start reading the body.
      setTimeout(() => resolveStarted({ finish: () => req.end(body.slice(half)), response }), 150);
    });
  });
}

function connectionRefused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED'));
  });
}

describe('graceful shutdown', () => {
  it('finishes in-flight requests, refuses new connections, then closes the pools', async () => {
    const client = await createClient(env, { grantTypes: ['client_credentials'], redirectUris: [], authMethod: 'client_secret_basic' });
    // A separate instance on the same stores, so this file's main server stays up.
    const instance = await env.startInstance();
    const port = Number(new URL(instance.url).port);

    const inFlight = await Promise.all(Array.from({ length: 5 }, () => slowTokenRequest(instance.url, client.clientId, client.clientSecret!)));
    const started = Date.now();
    const closed = instance.close();
    let closeDone = false;
    void closed.then(() => (closeDone = true));

    // The listening socket goes once no new connection has come for half a second (closing it earlier
    // would reset connections still in the accept queue)...
    let refused = false;
    for (let i = 0; i < 10 && !refused; i++) {
      await new Promise((r) => setTimeout(r, 600));
      refused = await connectionRefused(port);
    }
    expect(refused).toBe(true);
    // ...but close() waits for the requests already in flight.
    expect(closeDone).toBe(false);

    for (const p of inFlight) p.finish();
    const results = await Promise.all(inFlight.map((p) => p.response));
    for (const r of results) {
      expect(r.status).toBe(200);
      expect(JSON.parse(r.body).access_token).toEqual(expect.any(String));
    }

    await closed;
    // Finished connections are not kept alive past shutdown (no wait for the 10 s force-close).
    expect(Date.now() - started).toBeLessThan(5000);
    expect(instance.services.ds.isInitialized).toBe(false);
    expect(await instance.services.kv.ping()).toBe(false);
  });
});

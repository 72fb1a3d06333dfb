// The peer: bare oidc-provider with its in-memory adapter, answering its own introspection and
// client_credentials, configured as plainly as its documentation shows.
import http from 'node:http';
import Provider from 'oidc-provider';

const port = await new Promise<number>((resolve) => {
  const s = http.createServer().listen(0, '127.0.0.1', () => {
    const a = s.address();
    s.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
  });
});
const issuer = `http://127.0.0.1:${port}`;
const provider = new Provider(issuer, {
  clients: [
    { client_id: 'rs', client_secret: 'rs-secret-rs-secret-rs-secret-rs-secret', grant_types: ['client_credentials'], redirect_uris: [], response_types: [] },
    { client_id: 'app', client_secret: 'app-secret-app-secret-app-secret-app', grant_types: ['client_credentials'], redirect_uris: [], response_types: [], scope: 'workflows:read' },
  ],
  scopes: ['workflows:read'],
  features: { introspection: { enabled: true }, clientCredentials: { enabled: true }, devInteractions: { enabled: false } },
});
const server = http.createServer(provider.callback()).listen(port, '127.0.0.1', async () => {
  const res = await fetch(`${issuer}/token`, {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from('app:app-secret-app-secret-app-secret-app').toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: 'grant_type=client_credentials&scope=workflows%3Aread',
  });
  const { access_token } = (await res.json()) as { access_token: string };
  process.stdout.write(
    `${JSON.stringify({
      url: issuer,
      token: access_token,
      rsAuth: `Basic ${Buffer.from('rs:rs-secret-rs-secret-rs-secret-rs-secret').toString('base64')}`,
      appAuth: `Basic ${Buffer.from('app:app-secret-app-secret-app-secret-app').toString('base64')}`,
    })}\n`,
  );
});
void server;

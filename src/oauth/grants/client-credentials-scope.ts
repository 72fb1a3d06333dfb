import type Provider from 'oidc-provider';
import { namedClientId } from '../../http/token-request.js';
import { RESOURCE_SCOPES } from '../scopes.js';

/**
 * `client_credentials` without `scope` gets the client's registered scopes (RFC 6749 §3.3 lets the
 * server apply a pre-defined default), instead of a token without scopes that every route refuses.
 * The provider's own grant then issues it, with everything it does (resource indicators, DPoP).
 *
 * Runs inside the provider, before its token endpoint parses the form: Flowgate's token endpoint
 * pre-processor has already read the body into `req.body`, where the provider reads it from.
 */
export function defaultClientCredentialsScope(provider: Provider): void {
  provider.use(async (ctx, next) => {
    const req = ctx.req as typeof ctx.req & { body?: unknown };
    if (ctx.method === 'POST' && ctx.path === '/token' && typeof req.body === 'string' && req.body.includes('client_credentials')) {
      const params = new URLSearchParams(req.body);
      if (params.getAll('grant_type').length === 1 && params.get('grant_type') === 'client_credentials' && !params.has('scope')) {
        const clientId = namedClientId(ctx.get('authorization') || undefined, params);
        const client = clientId ? await provider.Client.find(clientId).catch(() => undefined) : undefined;
        const scope = (client?.scope ?? '').split(' ').filter((s) => RESOURCE_SCOPES.includes(s)).join(' ');
        if (scope) {
          params.set('scope', scope);
          req.body = params.toString();
        }
      }
    }
    await next();
  });
}

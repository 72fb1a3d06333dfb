import { decodeJwt } from 'jose';
import { parseBasicAuth } from './basic-auth.js';

/**
 * The client a token request names (RFC 6749 §2.3.1 Basic, `client_id`, or a client assertion's
 * `iss`), before anything is verified: for choosing a budget or a default, never for trusting it.
 */
export function namedClientId(authorization: string | undefined, params: URLSearchParams): string | undefined {
  const basic = parseBasicAuth(authorization);
  if (basic?.id) return basic.id;
  const id = params.get('client_id');
  if (id) return id;
  const assertion = params.get('client_assertion');
  if (!assertion) return undefined;
  try {
    const iss = decodeJwt(assertion).iss;
    return typeof iss === 'string' ? iss : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The one place that reads a caller's credential from a request. Flowgate's own routes import it from
 * this package, so the server and every workflow service accept exactly the same forms:
 * `Authorization: Bearer <credential>` (RFC 6750 §2.1), `x-api-key: <key>`, and the `api-key` query
 * parameter.
 */
export type CredentialSource = 'authorization' | 'x-api-key' | 'query';

export interface PresentedCredential {
  value: string;
  source: CredentialSource;
  /** The credential (also) came in the URL's query string, where an organization may refuse keys. */
  inQuery: boolean;
}

export interface CredentialRequest {
  headers: Record<string, string | string[] | undefined>;
  query?: Record<string, string | string[] | undefined>;
}

export class CredentialParseError extends Error {
  constructor(readonly code: 'MALFORMED_AUTHORIZATION' | 'MULTIPLE_CREDENTIALS', message: string) {
    super(message);
  }
}

function single(v: string | string[] | undefined): string | undefined {
  if (Array.isArray(v)) return v.length === 1 ? v[0] : v.length === 0 ? undefined : '\u0000multiple';
  return v;
}

/**
 * Returns the credential, `undefined` when none is present, or throws when the request is ambiguous
 * (two different credentials) or malformed. Non-Bearer Authorization schemes (e.g. Basic) are left to
 * the caller: they are client authentication, not a credential.
 */
export function parseCredential(req: CredentialRequest, opts: { allowQuery?: boolean } = {}): PresentedCredential | undefined {
  const found: Omit<PresentedCredential, 'inQuery'>[] = [];
  const auth = single(req.headers.authorization);
  if (auth !== undefined && auth !== '') {
    const m = /^Bearer[ ]+([A-Za-z0-9\-._~+/]+=*)\s*$/i.exec(auth);
    if (m) found.push({ value: m[1], source: 'authorization' });
    else if (/^Bearer\b/i.test(auth)) throw new CredentialParseError('MALFORMED_AUTHORIZATION', 'Malformed Bearer credential in the Authorization header');
  }
  const header = single(req.headers['x-api-key']);
  if (header !== undefined && header !== '') found.push({ value: header.trim(), source: 'x-api-key' });
  if (opts.allowQuery !== false && req.query) {
    const q = single(req.query['api-key']);
    if (q !== undefined && q !== '') found.push({ value: q, source: 'query' });
  }
  if (found.length === 0) return undefined;
  if (found.some((f) => f.value === '\u0000multiple' || f.value !== found[0].value)) {
    throw new CredentialParseError('MULTIPLE_CREDENTIALS', 'More than one credential was presented; send exactly one');
  }
  return { ...found[0], inQuery: found.some((f) => f.source === 'query') };
}

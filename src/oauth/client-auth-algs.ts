/** Asymmetric algorithms accepted for client assertions and service JWTs (never HS*, never none). */
export const CLIENT_AUTH_SIGNING_ALGS = ['ES256', 'ES384', 'ES512', 'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'EdDSA'];

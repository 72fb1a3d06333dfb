"""Flowgate's flows driven by Authlib (Debian's python3-authlib, with python3-requests).

Run by test/interop-authlib.test.ts: reads a JSON configuration on stdin and prints one JSON object.
  authorize  -> {"url", "state", "verifier"}: an authorization URL built by Authlib (PKCE S256)
  flows      -> {"<check>": {"ok": bool, ...}}: every other flow, each check independent
"""
import json
import sys
import time
import uuid

from authlib.integrations.requests_client import AssertionSession, OAuth2Session
from authlib.oauth2.rfc7523 import JWTBearerGrant, PrivateKeyJWT

JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer'
TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange'
API_KEY_TOKEN_TYPE = 'urn:flowgate:params:oauth:token-type:api-key'


def session(client_id, secret=None, method='client_secret_basic', **kwargs):
    s = OAuth2Session(client_id, secret, token_endpoint_auth_method=method, **kwargs)
    s.trust_env = False  # never send 127.0.0.1 through a proxy from the environment
    return s


def keyed_session(cfg, c):
    s = session(c['client_id'], c['private_key_pem'], 'private_key_jwt')
    s.register_client_auth_method(PrivateKeyJWT(cfg['token_endpoint'], headers={'kid': c['kid']}, alg='ES256'))
    return s


def assertion(cfg, c, jti=True, **claims):
    extra = dict(claims)
    if jti:
        extra['jti'] = uuid.uuid4().hex
    now = int(time.time())
    return JWTBearerGrant.sign(
        c['private_key_pem'], issuer=c['client_id'], audience=cfg['token_endpoint'], subject=c['client_id'],
        issued_at=now, expires_at=now + 300, claims=extra, header={'alg': 'ES256', 'kid': c['kid']},
    ).decode()


def error_of(fn):
    try:
        fn()
    except Exception as e:  # Authlib raises OAuthError subclasses carrying error / description
        return {'error': getattr(e, 'error', type(e).__name__), 'description': getattr(e, 'description', str(e))}
    return {'error': None}


def introspect(cfg, token):
    rs = cfg['rs']
    r = session(rs['client_id'], rs['client_secret']).introspect_token(cfg['introspection_endpoint'], token=token)
    return r.json()


def flows(cfg):
    out = {}

    def check(name, fn):
        try:
            out[name] = {'ok': True, **(fn() or {})}
        except Exception as e:
            out[name] = {'ok': False, 'error': f'{type(e).__name__}: {e}'}

    te = cfg['token_endpoint']

    def code_and_refresh():
        web = cfg['web']
        s = session(web['client_id'], web['client_secret'], redirect_uri=web['redirect_uri'], code_challenge_method='S256')
        tokens = s.fetch_token(te, authorization_response=cfg['callback'], code_verifier=cfg['verifier'], state=cfg['state'])
        refreshed = s.refresh_token(te, refresh_token=tokens['refresh_token'])
        return {
            'has_refresh_token': bool(tokens.get('refresh_token')),
            'rotated': refreshed.get('refresh_token') not in (None, tokens['refresh_token']),
            'introspection': introspect(cfg, refreshed['access_token']),
        }
    check('code_pkce_refresh', code_and_refresh)

    def cc_basic():
        web = cfg['web']
        t = session(web['client_id'], web['client_secret']).fetch_token(te, grant_type='client_credentials', scope='workflows:read')
        return {'scope': t.get('scope'), 'introspection': introspect(cfg, t['access_token'])}
    check('client_credentials_basic', cc_basic)

    def cc_post():
        post = cfg['post']
        t = session(post['client_id'], post['client_secret'], 'client_secret_post').fetch_token(te, grant_type='client_credentials')
        return {'scope': t.get('scope')}
    check('client_credentials_post_default_scope', cc_post)

    def cc_private_key_jwt():
        t = keyed_session(cfg, cfg['service']).fetch_token(te, grant_type='client_credentials', scope='workflows:execute')
        return {'scope': t.get('scope')}
    check('client_credentials_private_key_jwt', cc_private_key_jwt)

    def bearer_alongside_private_key_jwt():
        svc = cfg['service']
        t = keyed_session(cfg, svc).fetch_token(te, grant_type=JWT_BEARER, assertion=assertion(cfg, svc), scope='workflows:read')
        return {'scope': t.get('scope'), 'introspection': introspect(cfg, t['access_token'])}
    check('jwt_bearer_with_private_key_jwt', bearer_alongside_private_key_jwt)

    def bearer_alongside_secret():
        sec = cfg['secret_service']
        t = session(sec['client_id'], sec['client_secret']).fetch_token(te, grant_type=JWT_BEARER, assertion=assertion(cfg, sec))
        return {'scope': t.get('scope')}
    check('jwt_bearer_with_client_secret_basic', bearer_alongside_secret)

    def bearer_assertion_session():
        svc = cfg['service']
        s = AssertionSession(te, issuer=svc['client_id'], subject=svc['client_id'], audience=te, key=svc['private_key_pem'],
                             header={'alg': 'ES256', 'kid': svc['kid']}, claims={'jti': uuid.uuid4().hex}, scope='workflows:read')
        s.trust_env = False
        t = s.refresh_token()
        return {'scope': t.get('scope')}
    check('jwt_bearer_assertion_session', bearer_assertion_session)

    def bearer_errors():
        svc, sec = cfg['service'], cfg['secret_service']
        no_jti = error_of(lambda: keyed_session(cfg, svc).fetch_token(te, grant_type=JWT_BEARER, assertion=assertion(cfg, svc, jti=False)))
        once = assertion(cfg, svc)
        keyed_session(cfg, svc).fetch_token(te, grant_type=JWT_BEARER, assertion=once)
        replay = error_of(lambda: keyed_session(cfg, svc).fetch_token(te, grant_type=JWT_BEARER, assertion=once))
        bad_secret = error_of(lambda: session(sec['client_id'], 'wrong').fetch_token(te, grant_type=JWT_BEARER, assertion=assertion(cfg, sec)))
        return {'no_jti': no_jti, 'replay': replay, 'bad_secret': bad_secret}
    check('jwt_bearer_errors', bearer_errors)

    def exchange():
        sec = cfg['secret_service']
        s = session(sec['client_id'], sec['client_secret'])
        t = s.fetch_token(te, grant_type=TOKEN_EXCHANGE, subject_token=cfg['api_key'], subject_token_type=API_KEY_TOKEN_TYPE)
        inactive = error_of(lambda: s.fetch_token(te, grant_type=TOKEN_EXCHANGE, subject_token='sk-' + 'C' * 38, subject_token_type=API_KEY_TOKEN_TYPE))
        return {'introspection': introspect(cfg, t['access_token']), 'inactive': inactive}
    check('token_exchange', exchange)

    def introspection_and_revocation():
        web = cfg['web']
        s = session(web['client_id'], web['client_secret'])
        t = s.fetch_token(te, grant_type='client_credentials', scope='workflows:read')
        before = introspect(cfg, t['access_token'])
        revoked = s.revoke_token(cfg['revocation_endpoint'], token=t['access_token'])
        return {'before': before, 'revocation_status': revoked.status_code, 'after': introspect(cfg, t['access_token']),
                'api_key': introspect(cfg, cfg['api_key'])}
    check('introspection_revocation', introspection_and_revocation)
    return out


def main():
    phase = sys.argv[1]
    cfg = json.load(sys.stdin)
    if phase == 'authorize':
        web = cfg['web']
        s = session(web['client_id'], web['client_secret'], redirect_uri=web['redirect_uri'], code_challenge_method='S256',
                    scope='openid offline_access workflows:read')
        verifier = uuid.uuid4().hex + uuid.uuid4().hex
        url, state = s.create_authorization_url(cfg['authorization_endpoint'], code_verifier=verifier, prompt='consent')
        print(json.dumps({'url': url, 'state': state, 'verifier': verifier}))
    else:
        print(json.dumps(flows(cfg)))


if __name__ == '__main__':
    main()

import type { Adapter, AdapterPayload } from 'oidc-provider';
import { In, LessThan, type DataSource } from 'typeorm';
import type { KeyValueStore } from '../storage/kv.js';
import { OidcArtifactEntity } from './entities.js';
import type { ClientRows } from './client-rows.js';
import { denyGrant } from './deny-list.js';
import { grantTag } from './grant-tag.js';
import { MAX_SELF_SIGNED_LIFETIME } from './assertion-lifetime.js';

/**
 * Where each oidc-provider model lives, and why:
 * - PostgreSQL: what must survive a Redis restart or flush: Grant (the user's consent), Session (a
 *   signed-in browser), RefreshToken (long-lived, and its `consumed` flag drives reuse detection),
 *   and the registration tokens.
 * - Redis: what is short-lived and hot, where losing it only costs a retry: AuthorizationCode (60 s),
 *   Interaction, AccessToken and ClientCredentials (1 h; read on every introspection),
 *   ReplayDetection (single-use `jti`s), PAR, device and CIBA requests.
 * - Client: read-only view of the `oauth_clients` table, written by the clients service.
 */
export const DURABLE_MODELS = new Set(['Grant', 'Session', 'RefreshToken', 'RegistrationAccessToken', 'InitialAccessToken']);

const epoch = () => Math.floor(Date.now() / 1000);

/** Where the key-value adapter keeps an artifact (introspection reads access tokens straight from here). */
export const artifactKey = (model: string, id: string) => `oidc:${model}:${id}`;

class KeyValueAdapter implements Adapter {
  constructor(
    private readonly name: string,
    private readonly kv: KeyValueStore,
    /** The longest an access token lives (seconds): how long a revoked grant stays denied. */
    private readonly jwtLifetime?: number,
  ) {}

  private key(id: string) {
    return artifactKey(this.name, id);
  }

  async upsert(id: string, payload: AdapterPayload, expiresIn: number): Promise<void> {
    const key = this.key(id);
    const ttl = expiresIn > 0 ? expiresIn : undefined;
    if (this.name === 'ReplayDetection') {
      // The claim find() made already enforces single use; this write only shortens its life to the
      // assertion's own. Not awaited: should it fail, the longer claim stays, which is still safe.
      void this.kv.set(key, JSON.stringify(payload), ttl).catch(() => {});
      return;
    }
    await this.kv.set(key, JSON.stringify(payload), ttl);
    if (payload.grantId) await this.kv.sAdd(`oidc:grant:${payload.grantId}`, key, ttl ?? 86400 * 30);
    if (payload.uid) await this.kv.set(`oidc:${this.name}:uid:${payload.uid}`, id, ttl);
    if (payload.userCode) await this.kv.set(`oidc:${this.name}:userCode:${payload.userCode}`, id, ttl);
  }

  async find(id: string): Promise<AdapterPayload | undefined> {
    if (this.name === 'ReplayDetection') return this.claim(id);
    const raw = await this.kv.get(this.key(id));
    return raw ? (JSON.parse(raw) as AdapterPayload) : undefined;
  }

  /**
   * ReplayDetection (single-use `jti`s of client assertions and JWT-bearer grants, RFC 7523 §3 item 7):
   * the provider asks find() and, when nothing is found, saves. Two requests carrying the same
   * assertion at once would both find nothing; so find() claims the id atomically (SET NX) and
   * reports it found when it was already claimed. One round trip, and one winner. The claim lives as
   * long as any accepted assertion can (every endpoint caps self-signed JWTs at an hour, plus clock
   * tolerance); upsert() then sets the assertion's own expiry.
   */
  private async claim(id: string): Promise<AdapterPayload | undefined> {
    const claimed = await this.kv.setNX(this.key(id), JSON.stringify({ claimed: true }), MAX_SELF_SIGNED_LIFETIME + 120);
    return claimed ? undefined : ({ jti: id } as AdapterPayload);
  }

  async findByUid(uid: string) {
    const id = await this.kv.get(`oidc:${this.name}:uid:${uid}`);
    return id ? this.find(id) : undefined;
  }

  async findByUserCode(userCode: string) {
    const id = await this.kv.get(`oidc:${this.name}:userCode:${userCode}`);
    return id ? this.find(id) : undefined;
  }

  async consume(id: string): Promise<void> {
    const key = this.key(id);
    const raw = await this.kv.get(key);
    if (!raw) return;
    const payload = JSON.parse(raw) as AdapterPayload;
    payload.consumed = epoch();
    const ttl = payload.exp ? Math.max(1, payload.exp - epoch()) : undefined;
    await this.kv.set(key, JSON.stringify(payload), ttl);
  }

  async destroy(id: string): Promise<void> {
    await this.kv.del(this.key(id));
  }

  async revokeByGrantId(grantId: string): Promise<void> {
    // The grant set holds keys of every KV model; delete only this model's (each model is asked).
    const mine = (await this.kv.sMembers(`oidc:grant:${grantId}`)).filter((k) => k.startsWith(`oidc:${this.name}:`));
    if (mine.length) await this.kv.del(...mine);
    // JWT access tokens are not stored; they carry the grant's tag (`gid`) and are denied by it. Done
    // here because the provider awaits this before answering, so no introspection can race it.
    if (this.name === 'AccessToken' && this.jwtLifetime) await denyGrant(this.kv, grantTag(grantId), this.jwtLifetime + 60);
  }
}

class PostgresAdapter implements Adapter {
  constructor(
    private readonly name: string,
    private readonly ds: DataSource,
  ) {}

  private get repo() {
    return this.ds.getRepository(OidcArtifactEntity);
  }

  async upsert(id: string, payload: AdapterPayload, expiresIn: number): Promise<void> {
    await this.repo.upsert(
      {
        model: this.name,
        id,
        payload: payload as Record<string, any>,
        grantId: payload.grantId ?? null,
        uid: payload.uid ?? null,
        userCode: payload.userCode ?? null,
        expiresAt: expiresIn > 0 ? new Date(Date.now() + expiresIn * 1000) : null,
        consumedAt: null,
      },
      ['model', 'id'],
    );
  }

  private async findWhere(where: Partial<{ id: string; uid: string; userCode: string }>) {
    const row = await this.repo.findOneBy({ model: this.name, ...where });
    if (!row) return undefined;
    if (row.expiresAt && row.expiresAt.getTime() <= Date.now()) return undefined;
    return { ...row.payload, ...(row.consumedAt && { consumed: Math.floor(row.consumedAt.getTime() / 1000) }) } as AdapterPayload;
  }

  find(id: string) {
    return this.findWhere({ id });
  }
  findByUid(uid: string) {
    return this.findWhere({ uid });
  }
  findByUserCode(userCode: string) {
    return this.findWhere({ userCode });
  }

  async consume(id: string): Promise<void> {
    await this.repo.update({ model: this.name, id }, { consumedAt: new Date() });
  }

  async destroy(id: string): Promise<void> {
    await this.repo.delete({ model: this.name, id });
  }

  async revokeByGrantId(grantId: string): Promise<void> {
    await this.repo.delete({ model: this.name, grantId });
  }
}

/** Clients are managed by the clients service; the provider only reads them. */
class ClientAdapter implements Adapter {
  constructor(private readonly rows: ClientRows) {}

  async find(id: string): Promise<AdapterPayload | undefined> {
    const row = await this.rows.get(id);
    if (!row) return undefined;
    return {
      ...row.metadata,
      client_id: row.clientId,
      client_name: row.name,
      // Flowgate's own metadata (extraClientMetadata in provider.ts) comes from the row's columns.
      org_id: row.orgId,
      flowgate_introspect: row.introspect,
      // The stored value is a hash; compareClientSecret hashes the presented secret (see provider.ts).
      ...(row.secretHash && { client_secret: row.secretHash }),
    } as AdapterPayload;
  }
  async upsert() {
    throw new Error('clients are written through the clients service');
  }
  async findByUid() {
    return undefined;
  }
  async findByUserCode() {
    return undefined;
  }
  async consume() {}
  async destroy() {}
  async revokeByGrantId() {}
}

export function adapterFactory(ds: DataSource, kv: KeyValueStore, clientRows: ClientRows, accessTokenLifetime: number) {
  return (name: string): Adapter => {
    if (name === 'Client') return new ClientAdapter(clientRows);
    if (DURABLE_MODELS.has(name)) return new PostgresAdapter(name, ds);
    return new KeyValueAdapter(name, kv, accessTokenLifetime);
  };
}

/** Deletes expired durable artifacts; the KV store expires its own. */
export async function sweepExpiredArtifacts(ds: DataSource): Promise<number> {
  const res = await ds.getRepository(OidcArtifactEntity).delete({ expiresAt: LessThan(new Date()), model: In([...DURABLE_MODELS]) });
  return res.affected ?? 0;
}

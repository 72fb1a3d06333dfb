import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import type { KeyValueStore } from './kv.js';
import { MemoryKeyValueStore } from './memory-kv.js';
import { RedisKeyValueStore } from './redis-kv.js';
import { redisTopology } from './redis-topology.js';

/** Redis (standalone, Sentinel or Cluster, as configured), or the in-process store without one. */
export function openKeyValueStore(config: Config, logger?: Logger): KeyValueStore {
  const topology = redisTopology(config);
  return topology ? new RedisKeyValueStore(topology, config.redisPrefix, logger) : new MemoryKeyValueStore();
}

import type { Config } from '../config/schema.js';
import type { KeyValueStore } from './kv.js';
import { MemoryKeyValueStore } from './memory-kv.js';
import { RedisKeyValueStore } from './redis-kv.js';

export function openKeyValueStore(config: Config): KeyValueStore {
  return config.redisUrl ? new RedisKeyValueStore(config.redisUrl, config.redisPrefix) : new MemoryKeyValueStore();
}

// The object-store API in one import: `import { createObjectStore, objectStoreConfigFromEnv } from '../tiering/index.ts'`.
export * from './object-store.ts';
export {
  ObjectStoreConfigSchema, OBJECT_STORE_CONFIG_KEYS, createObjectStore, describeObjectStore, objectStoreConfigFromEnv,
  objectStoreConfigFromUrl, objectStoreConfigMarkdown, objectStoreEnvOverrides, validateObjectStoreConfig,
  type ObjectStoreConfig, type ObjectStoreConfigKey, type RawObjectStoreConfig,
} from './config.ts';
export { crc32cHex } from './body.ts';
export { FsObjectStore } from './fs-store.ts';
export { S3ObjectStore } from './s3-store.ts';
export { normalizePrefix } from './prefixed.ts';
export * from './manifest.ts';
export { TieredStorage, DEFAULT_TIERING_SETTINGS, type TieringSettings, type TieredPartition, type TieredStorageOptions } from './tiered-storage.ts';
export { TieringMetrics } from './metrics.ts';
export { LruCache, RemoteSegmentReader } from './remote-reader.ts';

import { crc32c as nativeCrc32c } from '@node-rs/crc32';

/**
 * CRC32C (Castagnoli) used by every checksum in the segment store.
 *
 * Chosen by measurement (bench/storage.ts, same machine, same run): @node-rs/crc32 (SIMD, native) vs
 * crc-32/crc32c (pure JS). See the "crc32c" lines printed by `npm run bench:storage` and docs/format.md;
 * the native one was ~20x (1 KiB) to ~40x (16 KiB) faster here, so it is the only one used at runtime.
 *
 * `seed` continues a running checksum: crc32c(b, crc32c(a)) === crc32c(concat(a, b)).
 */
export function crc32c(data: Uint8Array, seed?: number): number {
  return nativeCrc32c(data, seed ?? 0) >>> 0;
}

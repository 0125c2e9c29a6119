import { crc32c as nativeCrc32c } from '@node-rs/crc32';

/**
 * CRC32C (Castagnoli) used by every checksum in the segment store.
 *
 * Chosen by measurement (`npm run bench:storage`, same buffers, same run, four runs on a loaded 2-core VM):
 * @node-rs/crc32 (native) 298–648 MB/s on 1 KiB and 463–1355 MB/s on 16 KiB buffers vs crc-32/crc32c (pure JS)
 * 78–191 and 14–146 MB/s — 3.4x to 34x faster in every run — so the native one is the only one used at runtime
 * (table in docs/format.md).
 *
 * `seed` continues a running checksum: crc32c(b, crc32c(a)) === crc32c(concat(a, b)).
 */
export function crc32c(data: Uint8Array, seed?: number): number {
  return nativeCrc32c(data, seed ?? 0) >>> 0;
}

/**
 * Throughput of the object-store layer against s3rver, as RATIOS to the plain SDK in the same run (absolute numbers
 * on a shared box mean little). Not a test: `npx tsx test/s3/bench-objstore.ts [MiB per object] [objects]`.
 * - get: ObjectStore.get (retry wrapper + CRC32C verification) vs GetObject + concat, N objects in parallel
 * - put: ObjectStore.put (MD5 + CRC32C, ETag check) vs PutObject of the same buffers
 */
import { randomBytes } from 'node:crypto';
import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import type { Readable } from 'node:stream';
import { createObjectStore } from '../../broker/src/tiering/config.ts';
import { s3rverConfig, startS3rver } from './harness.ts';

const mib = Number(process.argv[2] ?? 8);
const count = Number(process.argv[3] ?? 8);
const s3 = await startS3rver();
const cfg = s3rverConfig(s3.endpoint, s3.bucket, { multipartThresholdBytes: 64 * 1024 * 1024 });
const store = createObjectStore(cfg);
const raw = new S3Client({ region: 'us-east-1', endpoint: s3.endpoint, forcePathStyle: true, credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' }, requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' });
const bodies = Array.from({ length: count }, () => randomBytes(mib * 1024 * 1024));
const total = mib * count;

async function time(fn: () => Promise<unknown>): Promise<number> {
  const t = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t) / 1e9;
}

try {
  const rounds = 3;
  const res = { rawPut: 0, storePut: 0, rawGet: 0, storeGet: 0 };
  for (let r = 0; r < rounds; r++) {
    // alternate the order each round so neither side always runs on a warmer cache
    const a = async (): Promise<void> => {
      res.rawPut += await time(() => Promise.all(bodies.map((b, i) => raw.send(new PutObjectCommand({ Bucket: s3.bucket, Key: `raw/${i}`, Body: b })))));
      res.rawGet += await time(() => Promise.all(bodies.map(async (_, i) => {
        const out = await raw.send(new GetObjectCommand({ Bucket: s3.bucket, Key: `raw/${i}` }));
        const chunks: Buffer[] = [];
        for await (const c of out.Body as Readable) chunks.push(c as Buffer);
        return Buffer.concat(chunks);
      })));
    };
    const b = async (): Promise<void> => {
      res.storePut += await time(() => Promise.all(bodies.map((body, i) => store.put(`store/${i}`, body))));
      res.storeGet += await time(() => Promise.all(bodies.map((_, i) => store.get(`store/${i}`))));
    };
    if (r % 2 === 0) {
      await a();
      await b();
    } else {
      await b();
      await a();
    }
  }
  const mbps = (s: number): string => `${((total * rounds) / s).toFixed(0)} MiB/s`;
  console.log(`${count} objects x ${mib} MiB, ${rounds} rounds, s3rver on loopback`);
  console.log(`put: ObjectStore ${mbps(res.storePut)}  vs raw SDK ${mbps(res.rawPut)}  ratio ${(res.rawPut / res.storePut).toFixed(2)}`);
  console.log(`get: ObjectStore ${mbps(res.storeGet)}  vs raw SDK ${mbps(res.rawGet)}  ratio ${(res.rawGet / res.storeGet).toFixed(2)}`);
} finally {
  await store.close();
  raw.destroy();
  await s3.stop();
}

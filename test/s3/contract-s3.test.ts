// The ObjectStore contract against a real S3 endpoint (s3rver over HTTP, in a child process). A small LIST page
// size exercises continuation tokens; a 5 MiB multipart threshold exercises multipart upload.
import { open } from 'node:fs/promises';
import * as path from 'node:path';
import { createObjectStore, objectStoreConfigFromUrl } from '../../broker/src/tiering/config.ts';
import { MiB, objectStoreContract } from './contract.ts';
import { s3rverConfig, startS3rver } from './harness.ts';

objectStoreContract('s3 backend (s3rver)', async () => {
  const s3 = await startS3rver();
  const threshold = 5 * MiB;
  return {
    store: (prefix) => createObjectStore(s3rverConfig(s3.endpoint, s3.bucket, {
      listPageSize: 100, multipartThresholdBytes: threshold, partSizeBytes: 5 * MiB, ...(prefix ? { prefix } : {}),
    })),
    fromUrl: (prefix) => createObjectStore(objectStoreConfigFromUrl(`s3://${s3.bucket}/${prefix}?endpoint=${s3.endpoint}&forcePathStyle=true`, {
      S3_ACCESS_KEY: 'S3RVER', S3_SECRET_KEY: 'S3RVER',
    })),
    async corruptAtRest(key) {
      // s3rver keeps each object in <dir>/<bucket>/<key>._S3rver_object
      const fh = await open(path.join(s3.dir, s3.bucket, `${key}._S3rver_object`), 'r+');
      try {
        const b = Buffer.alloc(1);
        await fh.read(b, 0, 1, 100);
        b[0] = b[0]! ^ 0xff;
        await fh.write(b, 0, 1, 100);
      } finally {
        await fh.close();
      }
    },
    multipartThresholdBytes: threshold,
    cleanup: () => s3.stop(),
  };
});

// The ObjectStore contract against the filesystem backend (file:///dir).
import { mkdtemp, open, rm } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { createObjectStore, objectStoreConfigFromUrl, validateObjectStoreConfig } from '../../broker/src/tiering/config.ts';
import { FsObjectStore } from '../../broker/src/tiering/fs-store.ts';
import { MiB, objectStoreContract } from './contract.ts';

objectStoreContract('file backend', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'lance-fsstore-'));
  const threshold = 5 * MiB;
  return {
    store: (prefix) => createObjectStore(validateObjectStoreConfig({ backend: 'file', path: dir, multipartThresholdBytes: threshold, ...(prefix ? { prefix } : {}) })),
    fromUrl: (prefix) => createObjectStore(objectStoreConfigFromUrl(`file://${dir}/${prefix}`)),
    async corruptAtRest(key) {
      const fh = await open(new FsObjectStore({ root: dir }).objectPath(key), 'r+');
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
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
});

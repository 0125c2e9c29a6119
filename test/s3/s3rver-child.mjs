// Runs s3rver in its own process (started by harness.ts with `node --openssl-legacy-provider`, without which
// ListObjectsV2 continuation tokens fail with 500). argv: <dir> <bucket...>. Prints {"port":N} once listening.
// Exits when its stdin closes, so a crashed test runner cannot leave it behind.
import S3rver from 's3rver';

const [dir, ...buckets] = process.argv.slice(2);
const server = new S3rver({
  address: '127.0.0.1',
  port: 0,
  directory: dir,
  silent: true,
  configureBuckets: buckets.map((name) => ({ name })),
});
const info = await server.run();
process.stdout.write(JSON.stringify({ port: info.port }) + '\n');
const stop = () => server.close().finally(() => process.exit(0));
process.stdin.on('end', stop);
process.stdin.on('close', stop);
process.stdin.resume();
process.on('SIGTERM', stop);

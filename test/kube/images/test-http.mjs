// Tiny test image for the kube stand-in: serves /healthz and /data, and records each boot in its PVC directory.
// It binds to the pod's own IP (POD_IP) and learns its volume's real path from DATA_DIR (rewritten by the kubelet).
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import dns from 'node:dns';

const ip = process.env.POD_IP ?? '127.0.0.1';
const port = Number(process.env.PORT ?? 8080);
const dataDir = process.env.DATA_DIR;
let boots = [];
if (dataDir) {
  const f = path.join(dataDir, 'boots.txt');
  const line = `${process.env.POD_NAME ?? 'unknown'} ${new Date().toISOString()}\n`;
  const fd = fs.openSync(f, 'a');
  fs.writeSync(fd, line);
  fs.fsyncSync(fd);
  fs.closeSync(fd);
  boots = fs.readFileSync(f, 'utf8').trim().split('\n');
}
const server = http.createServer((req, res) => {
  if (req.url === '/healthz') { res.writeHead(200); res.end('ok'); return; }
  if (req.url === '/data') {
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ pod: process.env.POD_NAME, ip, dataDir, boots, pid: process.pid }));
    return;
  }
  if (req.url?.startsWith('/resolve?name=')) {
    const name = decodeURIComponent(req.url.slice('/resolve?name='.length));
    dns.promises.lookup(name, { all: true }).then(
      (addrs) => { res.writeHead(200, { 'Content-Type': 'application/json' }); res.end(JSON.stringify(addrs.map((a) => a.address).sort())); },
      (e) => { res.writeHead(404); res.end(String(e.code ?? e)); });
    return;
  }
  res.writeHead(404); res.end();
});
server.listen(port, ip, () => { console.log(`test-http ${process.env.POD_NAME} listening on ${ip}:${port} data=${dataDir}`); });
process.on('SIGTERM', () => { console.log('SIGTERM: shutting down'); server.close(() => process.exit(0)); server.closeAllConnections(); });

// Cluster DNS for pod processes of the kube stand-in: preloaded into every Node process a pod runs (NODE_OPTIONS
// --import), it answers lookups of `<pod>.<svc>.<ns>.svc.cluster.local`, `<svc>.<ns>.svc…` and their search-domain
// short forms from the table the stand-in keeps in $KUBE_STANDIN_HOSTS, and falls back to the system resolver.
import dns from 'node:dns';
import fs from 'node:fs';

const file = process.env.KUBE_STANDIN_HOSTS;
const ns = process.env.KUBE_STANDIN_NAMESPACE ?? 'default';
const search = [`${ns}.svc.cluster.local`, 'svc.cluster.local', 'cluster.local'];

function table() {
  try { return JSON.parse(fs.readFileSync(file, 'utf8')); } catch { return {}; }
}

function find(host) {
  if (!file || typeof host !== 'string') return undefined;
  const t = table();
  const h = host.replace(/\.$/, '').toLowerCase();
  if (t[h]) return t[h];
  for (const s of search) if (t[`${h}.${s}`]) return t[`${h}.${s}`];
  return undefined;
}

const origLookup = dns.lookup;
dns.lookup = function lookup(hostname, options, callback) {
  const cb = typeof options === 'function' ? options : callback;
  const opts = typeof options === 'object' && options !== null ? options : { family: typeof options === 'number' ? options : 0 };
  const ips = find(hostname);
  if (!ips || ips.length === 0 || opts.family === 6) return origLookup.call(dns, hostname, options, callback);
  process.nextTick(() => {
    if (opts.all) cb(null, ips.map((address) => ({ address, family: 4 })));
    else cb(null, ips[0], 4);
  });
  return {};
};

const origPromiseLookup = dns.promises.lookup;
dns.promises.lookup = async function lookup(hostname, options) {
  const opts = typeof options === 'object' && options !== null ? options : {};
  const ips = find(hostname);
  if (!ips || ips.length === 0 || opts.family === 6) return origPromiseLookup.call(dns.promises, hostname, options);
  return opts.all ? ips.map((address) => ({ address, family: 4 })) : { address: ips[0], family: 4 };
};

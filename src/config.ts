// Every setting, from flags and the environment (flags win), validated once at start-up and
// printable without secrets (api.md §1, §5, §7).

import { isIP } from 'node:net';
import { availableParallelism } from 'node:os';

export interface Config {
  db: string;
  databaseUrl?: string;
  port: number;
  host: string;
  corsOrigin: string;
  logLevel: string;
  /** This node's zone: its dedicated IPs are listed first. */
  zone?: string;
  allowPrivateTrunkIps: boolean;
  maxCidrs: number;
  maxIpAclsPerTrunk: number;
  tokenTtlSeconds: number;
  loginMaxFailures: number;
  loginWindowSeconds: number;
  bodyLimit: number;
  /** A whole request must arrive within this many ms; idle connections close after it. */
  requestTimeoutMs: number;
  /** How often the change feed is polled, ms (other writers: the CLI, other nodes). */
  pollMs: number;
  /** `--sip TRANSPORT:HOST:PORT`, each listener (repeatable, or comma-separated). */
  sip?: string[];
  sipUpstream?: string;
  /** Files: the tls: listener's certificate and key, and CAs trusted for outbound TLS. */
  sipTlsCert?: string;
  sipTlsKey?: string;
  sipTlsCa?: string;
  /** TCP and TLS connections: at once in each edge process, and per source address. */
  sipMaxConnections: number;
  sipMaxConnectionsPerSource: number;
  /** Bytes held for one connection (an incomplete message read, what waits to be sent), and per source. */
  sipMaxBufferPerConnection: number;
  sipMaxBufferPerSource: number;
  /** A connection idle this long is closed (ms); so is one whose incomplete message is older. */
  sipIdleTimeoutMs: number;
  sipReject: 'respond' | 'drop';
  sipRejectCode: number;
  sipRejectReason: string;
  sipUnknownRealm: 'reject' | 'allow';
  /** /metrics' own listener (issue 20: not public by default); port 0 picks a free one. */
  metricsHost: string;
  metricsPort: number;
  /** When set, /metrics also answers on the API's port to `Authorization: Bearer <token>`. */
  metricsToken?: string;
  /** Edge worker processes sharing the SIP socket; 0 runs the edge in the API's process. */
  sipWorkers: number;
  /** api.md §9: Kamailio's permissions address file, kept current; its group; the RPC that reloads it. */
  kamailioAddressFile?: string;
  kamailioGroup: number;
  kamailioRpc?: string;
  /** Issue 20: failed logins for one account from all sources before 429. */
  loginMaxFailuresPerAccount: number;
  /** 64 hex characters; else secret.key in the data directory (secret-key.ts). */
  secretKey?: string;
  /** Load balancers (addresses, CIDRs) whose X-Forwarded-For names the source. */
  trustProxy?: string[];
  /** api.md §7.1: the pool `host` this node serves; the edge holds a socket on each of its IPs. */
  sipHost?: string;
  sipEgressPort: number;
  /** Issue 27: the API (and console) over HTTPS with this certificate chain and key, PEM files. */
  tlsCert?: string;
  tlsKey?: string;
}

/** One setting: its flag (commander's camelCase key), its environment variable, its parser. */
interface Setting<K extends keyof Config> {
  key: K;
  flag: string;
  env: string;
  description: string;
  parse: (text: string) => Config[K];
  fallback?: Config[K];
}

const integer = (name: string, min: number, max: number) => (text: string) => {
  const n = Number(text);
  if (!Number.isInteger(n) || n < min || n > max) throw new Error(`${name} must be a whole number from ${min} to ${max}, not '${text}'`);
  return n;
};
const boolean = (name: string) => (text: string) => {
  if (['true', '1', 'yes'].includes(text.toLowerCase())) return true;
  if (['false', '0', 'no'].includes(text.toLowerCase())) return false;
  throw new Error(`${name} must be true or false, not '${text}'`);
};
const oneOf = <T extends string>(name: string, values: readonly T[]) => (text: string) => {
  if (!(values as readonly string[]).includes(text)) throw new Error(`${name} must be one of ${values.join(', ')}, not '${text}'`);
  return text as T;
};
const text = (text: string) => text;
/** Comma-separated, as the environment gives a list (a repeated flag arrives joined so too). */
const list = (text: string) => text.split(',').map((item) => item.trim()).filter((item) => item !== '');
const rpcUrl = (text: string) => {
  if (!/^(https?:\/\/[^/]+|unix:.+)/.test(text)) throw new Error(`kamailio-rpc must be http://HOST:PORT/PATH or unix:PATH, not '${text}'`);
  return text;
};
/** Addresses or CIDRs, comma-separated (Fastify's trustProxy, proxy-addr, takes them as a list). */
const proxies = (list: string) =>
  list.split(',').map((item) => {
    const entry = item.trim();
    const [address, prefix, ...rest] = entry.split('/');
    const bits = isIP(address ?? '') === 4 ? 32 : 128;
    const prefixOk = prefix === undefined || (/^\d{1,3}$/.test(prefix) && Number(prefix) <= bits);
    if (isIP(address ?? '') === 0 || !prefixOk || rest.length > 0) throw new Error(`trust-proxy must list IP addresses or CIDRs, not '${entry}'`);
    return entry;
  });

function setting<K extends keyof Config>(s: Setting<K>): Setting<K> {
  return s;
}

export const SETTINGS = [
  setting({ key: 'db', flag: '--db <file>', env: 'IPWARDEN_DB', description: 'SQLite database file', parse: text, fallback: './data/ipwarden.db' }),
  setting({ key: 'databaseUrl', flag: '--database-url <url>', env: 'DATABASE_URL', description: 'PostgreSQL URL (wins over --db)', parse: text }),
  setting({ key: 'port', flag: '--port <n>', env: 'IPWARDEN_PORT', description: 'HTTP port', parse: integer('port', 0, 65535), fallback: 8000 }),
  setting({ key: 'host', flag: '--host <addr>', env: 'IPWARDEN_HOST', description: 'HTTP listen address', parse: text, fallback: '0.0.0.0' }),
  setting({ key: 'corsOrigin', flag: '--cors-origin <origins>', env: 'IPWARDEN_CORS_ORIGIN', description: 'allowed CORS origin(s), comma-separated', parse: text, fallback: '*' }),
  setting({ key: 'logLevel', flag: '--log-level <level>', env: 'IPWARDEN_LOG_LEVEL', description: 'pino log level', parse: oneOf('log level', ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const), fallback: 'info' }),
  setting({ key: 'zone', flag: '--zone <zone>', env: 'IPWARDEN_ZONE', description: "this node's zone (its dedicated IPs listed first)", parse: text }),
  setting({ key: 'allowPrivateTrunkIps', flag: '--allow-private-trunk-ips [bool]', env: 'IPWARDEN_ALLOW_PRIVATE_TRUNK_IPS', description: 'accept private ranges as trunk IPs', parse: boolean('allow-private-trunk-ips'), fallback: false }),
  setting({ key: 'maxCidrs', flag: '--max-cidrs <n>', env: 'IPWARDEN_MAX_CIDRS', description: 'most CIDRs in one access list', parse: integer('max-cidrs', 1, 1_000_000), fallback: 10_000 }),
  setting({ key: 'maxIpAclsPerTrunk', flag: '--max-ip-acls-per-trunk <n>', env: 'IPWARDEN_MAX_IP_ACLS_PER_TRUNK', description: 'most IP ACL entries on one trunk', parse: integer('max-ip-acls-per-trunk', 1, 1_000_000), fallback: 1_000 }),
  setting({ key: 'tokenTtlSeconds', flag: '--token-ttl <seconds>', env: 'IPWARDEN_TOKEN_TTL', description: 'token lifetime', parse: integer('token-ttl', 1, 31_536_000), fallback: 3600 }),
  setting({ key: 'loginMaxFailures', flag: '--login-max-failures <n>', env: 'IPWARDEN_LOGIN_MAX_FAILURES', description: 'failed logins per account and source before 429', parse: integer('login-max-failures', 1, 1_000_000), fallback: 10 }),
  setting({ key: 'loginWindowSeconds', flag: '--login-window <seconds>', env: 'IPWARDEN_LOGIN_WINDOW', description: 'window for counting failed logins', parse: integer('login-window', 1, 86_400), fallback: 900 }),
  setting({ key: 'bodyLimit', flag: '--body-limit <bytes>', env: 'IPWARDEN_BODY_LIMIT', description: 'largest request body', parse: integer('body-limit', 1024, 1_073_741_824), fallback: 1_048_576 }),
  setting({ key: 'requestTimeoutMs', flag: '--request-timeout <ms>', env: 'IPWARDEN_REQUEST_TIMEOUT', description: 'slow clients: a whole request must arrive within this, idle connections close after it', parse: integer('request-timeout', 100, 600_000), fallback: 30_000 }),
  setting({ key: 'pollMs', flag: '--poll-ms <ms>', env: 'IPWARDEN_POLL_MS', description: 'change-feed poll interval', parse: integer('poll-ms', 10, 60_000), fallback: 250 }),
  setting({ key: 'sip', flag: '--sip <TRANSPORT:HOST:PORT...>', env: 'IPWARDEN_SIP', description: 'run the SIP edge on these sockets: udp:, tcp: or tls:HOST:PORT, one per transport (repeatable, or comma-separated)', parse: list }),
  setting({ key: 'sipUpstream', flag: '--sip-upstream <HOST:PORT>', env: 'IPWARDEN_SIP_UPSTREAM', description: 'where the edge forwards allowed SIP', parse: text }),
  setting({ key: 'sipTlsCert', flag: '--sip-tls-cert <file>', env: 'IPWARDEN_SIP_TLS_CERT', description: "the tls: listener's certificate chain (PEM), re-read when it changes or on SIGHUP", parse: text }),
  setting({ key: 'sipTlsKey', flag: '--sip-tls-key <file>', env: 'IPWARDEN_SIP_TLS_KEY', description: "the tls: listener's private key (PEM)", parse: text }),
  setting({ key: 'sipTlsCa', flag: '--sip-tls-ca <file>', env: 'IPWARDEN_SIP_TLS_CA', description: "CA certificates (PEM) trusted for outbound TLS besides Node's list", parse: text }),
  setting({ key: 'sipMaxConnections', flag: '--sip-max-connections <n>', env: 'IPWARDEN_SIP_MAX_CONNECTIONS', description: 'TCP and TLS connections open at once, in each SIP edge process', parse: integer('sip-max-connections', 1, 1_000_000), fallback: 10_000 }),
  setting({ key: 'sipMaxConnectionsPerSource', flag: '--sip-max-connections-per-source <n>', env: 'IPWARDEN_SIP_MAX_CONNECTIONS_PER_SOURCE', description: 'TCP and TLS connections from one address at once, over all the SIP workers', parse: integer('sip-max-connections-per-source', 1, 1_000_000), fallback: 64 }),
  // A connection must hold at least one whole message (8 KiB).
  setting({ key: 'sipMaxBufferPerConnection', flag: '--sip-max-buffer-per-connection <bytes>', env: 'IPWARDEN_SIP_MAX_BUFFER_PER_CONNECTION', description: 'bytes held for one TCP or TLS connection (a message being read, what waits to be sent)', parse: integer('sip-max-buffer-per-connection', 8192, 1_073_741_824), fallback: 65_536 }),
  setting({ key: 'sipMaxBufferPerSource', flag: '--sip-max-buffer-per-source <bytes>', env: 'IPWARDEN_SIP_MAX_BUFFER_PER_SOURCE', description: 'bytes held for all the TCP and TLS connections of one address', parse: integer('sip-max-buffer-per-source', 8192, 1_073_741_824), fallback: 1_048_576 }),
  setting({ key: 'sipIdleTimeoutMs', flag: '--sip-idle-timeout <ms>', env: 'IPWARDEN_SIP_IDLE_TIMEOUT', description: 'a TCP or TLS connection idle this long is closed (the upstream\'s excepted)', parse: integer('sip-idle-timeout', 100, 86_400_000), fallback: 120_000 }),
  setting({ key: 'sipReject', flag: '--sip-reject <mode>', env: 'IPWARDEN_SIP_REJECT', description: 'respond (default) or drop denied requests', parse: oneOf('sip-reject', ['respond', 'drop'] as const), fallback: 'respond' }),
  setting({ key: 'sipRejectCode', flag: '--sip-reject-code <code>', env: 'IPWARDEN_SIP_REJECT_CODE', description: 'SIP status for denied requests', parse: integer('sip-reject-code', 400, 699), fallback: 603 }),
  setting({ key: 'sipRejectReason', flag: '--sip-reject-reason <text>', env: 'IPWARDEN_SIP_REJECT_REASON', description: 'SIP reason phrase for denied requests', parse: text, fallback: 'Rejected by ACL' }),
  setting({ key: 'sipWorkers', flag: '--sip-workers <n>', env: 'IPWARDEN_SIP_WORKERS', description: 'SIP edge worker processes (0: in the API process)', parse: integer('sip-workers', 0, 256), fallback: availableParallelism() }),
  setting({ key: 'sipUnknownRealm', flag: '--sip-unknown-realm <policy>', env: 'IPWARDEN_SIP_UNKNOWN_REALM', description: 'reject (default) or allow requests for unknown realms', parse: oneOf('sip-unknown-realm', ['reject', 'allow'] as const), fallback: 'reject' }),
  setting({ key: 'kamailioAddressFile', flag: '--kamailio-address-file <path>', env: 'IPWARDEN_KAMAILIO_ADDRESS_FILE', description: "keep this Kamailio permissions address file current with the active trunk entries", parse: text }),
  setting({ key: 'kamailioGroup', flag: '--kamailio-group <n>', env: 'IPWARDEN_KAMAILIO_GROUP', description: 'the address group of the exported trunk entries', parse: integer('kamailio-group', 1, 4_294_967_295), fallback: 1 }),
  setting({ key: 'kamailioRpc', flag: '--kamailio-rpc <url>', env: 'IPWARDEN_KAMAILIO_RPC', description: 'after each rewrite call permissions.addressReload here: http://HOST:PORT/PATH (jsonrpcs) or unix:PATH (ctl)', parse: rpcUrl }),
  setting({ key: 'metricsHost', flag: '--metrics-host <addr>', env: 'IPWARDEN_METRICS_HOST', description: 'listen address of /metrics (Prometheus)', parse: text, fallback: '127.0.0.1' }),
  setting({ key: 'metricsPort', flag: '--metrics-port <n>', env: 'IPWARDEN_METRICS_PORT', description: 'port of /metrics (0: any free port)', parse: integer('metrics-port', 0, 65535), fallback: 8001 }),
  setting({ key: 'metricsToken', flag: '--metrics-token <token>', env: 'IPWARDEN_METRICS_TOKEN', description: "also serve /metrics on the API's port to Authorization: Bearer <token>", parse: text }),
  setting({ key: 'loginMaxFailuresPerAccount', flag: '--login-max-failures-per-account <n>', env: 'IPWARDEN_LOGIN_MAX_FAILURES_PER_ACCOUNT', description: 'failed logins per account from all sources before 429', parse: integer('login-max-failures-per-account', 1, 1_000_000), fallback: 10 }),
  setting({ key: 'secretKey', flag: '--secret-key <hex>', env: 'IPWARDEN_SECRET_KEY', description: 'key sealing API keys and keying the login lookup, 64 hex characters (default: secret.key in the data directory, generated once)', parse: text }),
  setting({ key: 'trustProxy', flag: '--trust-proxy <addresses>', env: 'IPWARDEN_TRUST_PROXY', description: "load balancers whose X-Forwarded-For names the client (comma-separated addresses or CIDRs)", parse: proxies }),
  setting({ key: 'sipHost', flag: '--sip-host <name>', env: 'IPWARDEN_SIP_HOST', description: 'the dedicated-IP pool host this node serves (outbound calls leave from its IPs)', parse: text }),
  setting({ key: 'tlsCert', flag: '--tls-cert <file>', env: 'IPWARDEN_TLS_CERT', description: 'serve the API over HTTPS with this PEM certificate chain (reloaded when the file changes or on SIGHUP)', parse: text }),
  setting({ key: 'tlsKey', flag: '--tls-key <file>', env: 'IPWARDEN_TLS_KEY', description: 'the PEM private key of --tls-cert', parse: text }),
  setting({ key: 'sipEgressPort', flag: '--sip-egress-port <port>', env: 'IPWARDEN_SIP_EGRESS_PORT', description: 'UDP port of the edge on each dedicated IP', parse: integer('sip-egress-port', 1, 65535), fallback: 5060 }),
] as const;

/** Resolves every setting: a flag value, else the environment, else the default. */
export function loadConfig(flags: Record<string, unknown>, env: NodeJS.ProcessEnv = process.env): Config {
  const config: Record<string, unknown> = {};
  for (const s of SETTINGS) {
    // Commander names a flag's value after the flag (`--token-ttl` → tokenTtl), callers in code by the key.
    const flag = flags[s.key] ?? flags[attributeOf(s.flag)];
    const raw = flag === true ? 'true' : typeof flag === 'string' ? flag : Array.isArray(flag) ? flag.join(',') : env[s.env];
    if (raw !== undefined && raw !== '') config[s.key] = s.parse(raw);
    else if (s.fallback !== undefined) config[s.key] = s.fallback;
  }
  return config as unknown as Config;
}

/** The name commander gives a flag's value: its long name in camelCase. */
function attributeOf(flag: string): string {
  return flag.slice(2).split(' ')[0]!.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

/** The configuration as it may be printed: a database URL's password and the metrics token hidden. */
export function describeConfig(config: Config): Record<string, unknown> {
  const shown: Record<string, unknown> = { ...config };
  if (config.metricsToken) shown.metricsToken = '***';
  if (config.secretKey) shown.secretKey = '***';
  if (config.databaseUrl) shown.databaseUrl = config.databaseUrl.replace(/\/\/([^:/@]+):[^@]*@/, '//$1:***@');
  return shown;
}

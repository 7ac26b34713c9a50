// Dedicated IPs (api.md §3): the system pool for a superduper admin (filter, add, import a CSV),
// and for the chosen account its available and assigned IPs, assigned and released all or none.

import { useState } from 'preact/hooks';
import { ApiError, api } from './api.ts';
import { FieldError, Lines, Problem, Section, describe, fieldErrors, useAction, useLoad } from './ui.tsx';

interface PoolIp {
  ip: string;
  zone: string;
  host: string;
  status: 'available' | 'assigned';
  assigned_to?: string;
}

export function DedicatedIps({ accountId, superduper }: { accountId: string; superduper: boolean }) {
  const [version, setVersion] = useState(0);
  const changed = () => setVersion((v) => v + 1);
  return (
    <>
      {superduper && <Pool version={version} onChange={changed} />}
      <AccountIps accountId={accountId} version={version} onChange={changed} />
    </>
  );
}

function Pool({ version, onChange }: { version: number; onChange: () => void }) {
  const [zone, setZone] = useState('');
  const [host, setHost] = useState('');
  const [status, setStatus] = useState('');
  const query = new URLSearchParams(Object.entries({ zone, host, status }).filter(([, v]) => v !== '')).toString();
  const pool = useLoad(async () => (await api<PoolIp[]>('GET', `/ips${query ? `?${query}` : ''}`)).data, [query, version]);
  const zones = useLoad(async () => (await api<string[]>('GET', '/ips/zones')).data, [version]);
  const hosts = useLoad(async () => (await api<string[]>('GET', '/ips/hosts')).data, [version]);
  return (
    <>
      <Section title="Pool">
        <div class="filters" role="group" aria-label="Filter the pool">
          <Filter label="Zone" value={zone} set={setZone} choices={zones.data ?? []} />
          <Filter label="Host" value={host} set={setHost} choices={hosts.data ?? []} />
          <Filter label="Status" value={status} set={setStatus} choices={['available', 'assigned']} />
        </div>
        <Problem error={pool.error} />
        <div class="scroll">
          <table aria-label="Pool IPs">
            <thead>
              <tr><th>IP</th><th>Zone</th><th>Host</th><th>Status</th><th>Account</th></tr>
            </thead>
            <tbody>
              {pool.data?.map((p) => (
                <tr key={p.ip}>
                  <td class="mono">{p.ip}</td><td>{p.zone}</td><td>{p.host}</td>
                  <td><span class={`badge ${p.status}`}>{p.status}</span></td>
                  <td class="mono">{p.assigned_to ?? ''}</td>
                </tr>
              ))}
            </tbody>
          </table>
          {pool.data?.length === 0 && <p class="muted">No IP matches.</p>}
        </div>
      </Section>
      <AddPoolIp onChange={onChange} />
      <Lines title="Import a CSV" label="Rows (ip,zone,host)" placeholder="203.0.113.10,us-east,proxy1.us-east.example.com" button="Import" results="Import results" file send={addRow} explain={refusal} skip={isHeader} onDone={onChange} />
    </>
  );
}

function Filter({ label, value, set, choices }: { label: string; value: string; set: (value: string) => void; choices: string[] }) {
  return (
    <label>
      {label}
      <select value={value} onChange={(e) => set(e.currentTarget.value)}>
        <option value="">any</option>
        {choices.map((c) => <option key={c}>{c}</option>)}
      </select>
    </label>
  );
}

/** Why the pool refused an IP; a 409 means it is there already. */
const refusal = (error: unknown) => (error instanceof ApiError && error.status === 409 ? 'already in the pool' : describe(error));

function AddPoolIp({ onChange }: { onChange: () => void }) {
  const [ip, setIp] = useState('');
  const [zone, setZone] = useState('');
  const [host, setHost] = useState('');
  const { error, busy, run } = useAction();
  const fields = fieldErrors(error);
  const submit = async (event: Event) => {
    event.preventDefault();
    if (await run(() => api('PUT', '/ips', { ip, zone, host }))) {
      setIp('');
      onChange();
    }
  };
  const field = (name: string, label: string, value: string, set: (v: string) => void) => (
    <label>
      {label}
      <input name={name} value={value} required aria-invalid={fields[name] ? true : undefined} aria-describedby={`add-ip-${name}-error`} onInput={(e) => set(e.currentTarget.value)} />
      <FieldError id={`add-ip-${name}-error`} messages={fields[name]} />
    </label>
  );
  return (
    <Section title="Add an IP to the pool">
      <form class="inline" onSubmit={submit}>
        {field('ip', 'IP', ip, setIp)}
        {field('zone', 'Zone', zone, setZone)}
        {field('host', 'Host', host, setHost)}
        <button type="submit" disabled={busy}>Add IP</button>
      </form>
      {Object.keys(fields).length === 0 && error !== undefined && <p class="problem" role="alert">{refusal(error)}</p>}
    </Section>
  );
}

/** A CSV `ip,zone,host` per line (a header line is skipped), added one row at a time. */
async function addRow(line: string) {
  const cells = line.split(',').map((c) => c.trim());
  if (cells.length !== 3) throw new Error('expected three columns: ip,zone,host');
  const [ip, zone, host] = cells;
  await api('PUT', '/ips', { ip, zone, host });
}
const isHeader = (line: string, index: number) => index === 0 && /^ip\s*,\s*zone\s*,\s*host$/i.test(line);

interface AccountIp {
  ip: string;
  zone: string;
}

function AccountIps({ accountId, version, onChange }: { accountId: string; version: number; onChange: () => void }) {
  const available = useLoad(async () => (await api<AccountIp[]>('GET', `/accounts/${accountId}/ips`)).data, [accountId, version]);
  const assigned = useLoad(async () => (await api<AccountIp[]>('GET', `/accounts/${accountId}/ips/assigned`)).data, [accountId, version]);
  return (
    <>
      <IpBatch key={`assign-${accountId}`} title="Available to this account" verb="Assign" method="POST" accountId={accountId} ips={available} onChange={onChange} />
      <IpBatch key={`release-${accountId}`} title="Assigned to this account" verb="Release" method="DELETE" accountId={accountId} ips={assigned} onChange={onChange} />
    </>
  );
}

/**
 * A list of IPs to tick, plus any typed in, sent as one all-or-nothing request; a refusal's
 * per-IP errors (`ips.N`) are shown beside each IP.
 */
function IpBatch(props: { title: string; verb: 'Assign' | 'Release'; method: 'POST' | 'DELETE'; accountId: string; ips: ReturnType<typeof useLoad<AccountIp[]>>; onChange: () => void }) {
  const { title, verb, method, accountId, ips, onChange } = props;
  const [ticked, setTicked] = useState<Set<string>>(new Set());
  const [typed, setTyped] = useState('');
  const [sent, setSent] = useState<string[]>([]);
  const [done, setDone] = useState<string | undefined>(undefined);
  const { error, busy, run } = useAction();
  const perIp = fieldErrors(error);
  const toggle = (ip: string) => {
    const next = new Set(ticked);
    if (!next.delete(ip)) next.add(ip);
    setTicked(next);
  };
  const submit = async (event: Event) => {
    event.preventDefault();
    const list = [...ticked, ...typed.split(/[\s,]+/).filter(Boolean)];
    setSent(list);
    setDone(undefined);
    if (await run(() => api(method, `/accounts/${accountId}/ips`, { ips: list }))) {
      setDone(`${verb === 'Assign' ? 'Assigned' : 'Released'}: ${list.join(', ')}`);
      setTicked(new Set());
      setTyped('');
      onChange();
    }
  };
  const id = verb.toLowerCase();
  return (
    <Section title={title}>
      <Problem error={ips.error} />
      <form onSubmit={submit}>
        <fieldset>
          <legend>IPs to {id}</legend>
          {ips.data?.length === 0 && <p class="muted">None.</p>}
          <ul class="checks">
            {ips.data?.map((p) => (
              <li key={p.ip}>
                <label class="check">
                  <input type="checkbox" checked={ticked.has(p.ip)} onChange={() => toggle(p.ip)} />
                  <span class="mono">{p.ip}</span> <span class="muted">{p.zone}</span>
                </label>
              </li>
            ))}
          </ul>
          <label>
            Other IPs (separated by spaces or commas)
            <input name={`${id}-typed`} value={typed} onInput={(e) => setTyped(e.currentTarget.value)} />
          </label>
        </fieldset>
        <button type="submit" disabled={busy}>{verb} selected</button>
      </form>
      {done && <p role="status" class="ok">{done}</p>}
      {Object.keys(perIp).length > 0 ? (
        <div role="alert">
          <p class="problem">Nothing was {verb === 'Assign' ? 'assigned' : 'released'}: the request is all or nothing.</p>
          <ul class="outcomes" aria-label={`${verb} results`}>
            {sent.map((ip, i) => (
              <li key={ip} class={perIp[`ips.${i}`] ? 'refused' : 'ok'}>
                <span class="mono">{ip}</span> — {perIp[`ips.${i}`]?.join('; ') ?? 'fine'}
              </li>
            ))}
          </ul>
        </div>
      ) : (
        <Problem error={error} />
      )}
    </Section>
  );
}

// Access lists (api.md §4): the account's or a device's list edited as rows of CIDRs, with the
// order and the user agent; the API's errors beside their rows; and a source put to the test.

import { useEffect, useState } from 'preact/hooks';
import { api } from './api.ts';
import { FieldError, Problem, Section, fieldErrors, useAction, useLoad } from './ui.tsx';

type Order = 'allow,deny' | 'deny,allow';
interface AccessList {
  order?: Order;
  cidrs?: string[];
  user_agent?: string;
}
interface Device {
  id: string;
  name: string;
  sip?: { username?: string };
}

export function AccessLists({ accountId }: { accountId: string }) {
  const devices = useLoad(async () => (await api<Device[]>('GET', `/accounts/${accountId}/devices`)).data, [accountId]);
  const [deviceId, setDeviceId] = useState('');
  useEffect(() => setDeviceId(''), [accountId]);
  return (
    <>
      <Section title="Which list">
        <label>
          List of
          <select value={deviceId} onChange={(e) => setDeviceId(e.currentTarget.value)}>
            <option value="">the account</option>
            {devices.data?.map((d) => <option key={d.id} value={d.id}>device {d.name} ({d.sip?.username ?? 'no SIP username'})</option>)}
          </select>
        </label>
        <Problem error={devices.error} />
      </Section>
      <Editor key={`${accountId}/${deviceId}`} path={deviceId ? `/accounts/${accountId}/devices/${deviceId}/access_lists` : `/accounts/${accountId}/access_lists`} />
      <TestSource accountId={accountId} devices={devices.data ?? []} deviceId={deviceId} />
    </>
  );
}

function Editor({ path }: { path: string }) {
  const stored = useLoad(async () => (await api<AccessList>('GET', path)).data, [path]);
  const [order, setOrder] = useState<Order>('allow,deny');
  const [rows, setRows] = useState<string[]>(['']);
  const [userAgent, setUserAgent] = useState('');
  const [saved, setSaved] = useState<string | undefined>(undefined);
  const { error, busy, run } = useAction();
  useEffect(() => {
    const list = stored.data;
    if (!list) return;
    setOrder(list.order ?? 'allow,deny');
    setRows(list.cidrs && list.cidrs.length > 0 ? list.cidrs : ['']);
    setUserAgent(list.user_agent ?? '');
  }, [stored.data]);

  // Blank rows are not sent; `sentRow[i]` is the row that cidrs.i came from.
  const sentRow = rows.flatMap((row, i) => (row.trim() === '' ? [] : [i]));
  const cidrs = sentRow.map((i) => rows[i]!.trim());
  const fields = fieldErrors(error);
  const rowErrors = (row: number) => fields[`cidrs.${sentRow.indexOf(row)}`];
  const deniesAll = order === 'allow,deny' && cidrs.length === 0;
  const exists = stored.data !== undefined && stored.data.order !== undefined;

  const save = async (event: Event) => {
    event.preventDefault();
    setSaved(undefined);
    const body: AccessList = { order, cidrs, ...(userAgent.trim() ? { user_agent: userAgent.trim() } : {}) };
    if (await run(() => api('POST', path, body))) {
      setSaved('Saved. The next decision uses this list.');
      void stored.reload();
    }
  };
  const remove = async () => {
    setSaved(undefined);
    if (await run(() => api('DELETE', path))) {
      setSaved('Deleted: with no list, every source is allowed by this level.');
      void stored.reload();
    }
  };
  const setRow = (i: number, value: string) => setRows(rows.map((r, j) => (j === i ? value : r)));
  const otherErrors = Object.keys(fields).some((f) => !/^(cidrs\.\d+|order|user_agent|cidrs)$/.test(f));

  // Until the stored list is read, a form would show defaults that its arrival then overwrites.
  if (stored.data === undefined && stored.error === undefined) return <Section title="Reading the list…">{null}</Section>;
  return (
    <Section title={exists ? 'Edit the list' : 'No list yet (every source allowed)'}>
      <Problem error={stored.error} />
      <form onSubmit={save}>
        <fieldset>
          <legend>Order</legend>
          <label class="check">
            <input type="radio" name="order" value="allow,deny" checked={order === 'allow,deny'} onChange={() => setOrder('allow,deny')} />
            allow,deny — only the listed sources are allowed
          </label>
          <label class="check">
            <input type="radio" name="order" value="deny,allow" checked={order === 'deny,allow'} onChange={() => setOrder('deny,allow')} />
            deny,allow — the listed sources are denied, all others allowed
          </label>
          <FieldError id="order-error" messages={fields.order} />
        </fieldset>
        <fieldset>
          <legend>CIDRs</legend>
          <ol class="rows">
            {rows.map((row, i) => (
              <li key={i}>
                <div class="row">
                  <label class="grow">
                    <span class="sr-only">CIDR {i + 1}</span>
                    <input
                      name={`cidr-${i}`}
                      class="mono"
                      value={row}
                      placeholder="203.0.113.0/24"
                      aria-invalid={rowErrors(i) ? true : undefined}
                      aria-describedby={`cidr-${i}-error`}
                      onInput={(e) => setRow(i, e.currentTarget.value)}
                    />
                  </label>
                  <button type="button" class="secondary" aria-label={`Remove CIDR ${i + 1}`} onClick={() => setRows(rows.length > 1 ? rows.filter((_, j) => j !== i) : [''])}>
                    Remove
                  </button>
                </div>
                <FieldError id={`cidr-${i}-error`} messages={rowErrors(i)} />
              </li>
            ))}
          </ol>
          <button type="button" class="secondary" onClick={() => setRows([...rows, ''])}>Add a CIDR</button>
          <FieldError id="cidrs-error" messages={fields.cidrs} />
        </fieldset>
        <label>
          User agent (RE2 pattern, optional; matched anywhere, case-sensitive)
          <input name="user_agent" class="mono" value={userAgent} placeholder="^Yealink" aria-describedby="user_agent-error" onInput={(e) => setUserAgent(e.currentTarget.value)} />
          <FieldError id="user_agent-error" messages={fields.user_agent} />
        </label>
        {deniesAll && (
          <p class="warning" role="alert">
            Warning: an <code>allow,deny</code> list with no CIDRs denies every source. To allow everything, delete the list instead.
          </p>
        )}
        <div class="actions">
          <button type="submit" disabled={busy}>{deniesAll ? 'Save (denies every source)' : 'Save list'}</button>
          {exists && <button type="button" class="danger" disabled={busy} onClick={() => void remove()}>Delete list</button>}
        </div>
      </form>
      {saved && <p role="status" class="ok">{saved}</p>}
      {(otherErrors || (error !== undefined && Object.keys(fields).length === 0)) && <Problem error={error} />}
    </Section>
  );
}

interface Part {
  decision: 'allow' | 'deny';
  reason: 'matched' | 'not_matched' | 'empty_list' | 'user_agent_mismatch' | 'no_list';
  order?: Order;
  cidr?: string;
}
interface Check {
  decision: 'allow' | 'deny';
  account: Part;
  device?: Part;
}

/** Why one list decided as it did, in words (the README's table). */
function explain(part: Part): string {
  switch (part.reason) {
    case 'matched':
      return `the source is in ${part.cidr} and the order is ${part.order}, so it is ${part.decision === 'allow' ? 'allowed' : 'denied'}`;
    case 'not_matched':
      return `no CIDR holds the source and the order is ${part.order}, so it is ${part.decision === 'allow' ? 'allowed' : 'denied'}`;
    case 'empty_list':
      return 'the list is an empty allow,deny list, which denies every source';
    case 'user_agent_mismatch':
      return "the user agent does not match the list's pattern, which denies";
    case 'no_list':
      return 'there is no list, which allows';
  }
}

function TestSource({ accountId, devices, deviceId }: { accountId: string; devices: Device[]; deviceId: string }) {
  const [ip, setIp] = useState('');
  const [userAgent, setUserAgent] = useState('');
  const [device, setDevice] = useState(deviceId);
  const [result, setResult] = useState<Check | undefined>(undefined);
  const { error, busy, run } = useAction();
  useEffect(() => setDevice(deviceId), [deviceId]);
  const fields = fieldErrors(error);
  const submit = (event: Event) => {
    event.preventDefault();
    setResult(undefined);
    const query = new URLSearchParams({ ip, ...(userAgent ? { user_agent: userAgent } : {}), ...(device ? { device_id: device } : {}) });
    void run(async () => setResult((await api<Check>('GET', `/accounts/${accountId}/access_lists/check?${query}`)).data));
  };
  const decider = result && (result.decision === 'allow' ? 'every list allows' : [result.account.decision === 'deny' && 'the account list', result.device?.decision === 'deny' && 'the device list'].filter(Boolean).join(' and '));
  return (
    <Section title="Test a source">
      <form class="inline" onSubmit={submit}>
        <label>
          Source IP
          <input name="test-ip" class="mono" required value={ip} aria-describedby="test-ip-error" onInput={(e) => setIp(e.currentTarget.value)} />
          <FieldError id="test-ip-error" messages={fields.ip} />
        </label>
        <label>
          User agent
          <input name="test-user-agent" value={userAgent} onInput={(e) => setUserAgent(e.currentTarget.value)} />
        </label>
        <label>
          Device
          <select value={device} onChange={(e) => setDevice(e.currentTarget.value)}>
            <option value="">none (account only)</option>
            {devices.map((d) => <option key={d.id} value={d.id}>{d.name}</option>)}
          </select>
        </label>
        <button type="submit" disabled={busy}>Test</button>
      </form>
      {Object.keys(fields).length === 0 && <Problem error={error} />}
      {result && (
        <div class="verdict" role="status" aria-label="Decision">
          <p>
            <span class={`badge ${result.decision}`}>{result.decision}</span> — decided by {decider}.
          </p>
          <ul>
            <li>Account list: <strong>{result.account.decision}</strong>, {explain(result.account)}.</li>
            {result.device && <li>Device list: <strong>{result.device.decision}</strong>, {explain(result.device)}.</li>}
          </ul>
        </div>
      )}
    </Section>
  );
}

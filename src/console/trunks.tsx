// Trunks and their IP ACL entries (api.md §5): create, enable and disable, delete, paste many; a
// 409 overlap with another tenant explained in words.

import { useEffect, useState } from 'preact/hooks';
import { ApiError, api } from './api.ts';
import { FieldError, Lines, Section, describe, fieldErrors, useAction, useLoad } from './ui.tsx';

interface Trunk {
  id: string;
  name: string;
  enabled: boolean;
}
interface Entry {
  id: string;
  ip_address: string;
  description: string;
  enabled: boolean;
}

/** An error in words; a 409 says what an overlap means. */
function explain(error: unknown, address?: string): string {
  if (!(error instanceof ApiError) || error.status !== 409) return describe(error);
  const cause = String(error.data.cause ?? '');
  const what = address ?? 'This address';
  if (cause.includes('another account')) {
    return `${what} overlaps an address that already authenticates a trunk of another account. An address can authenticate one tenant only, so that no tenant can take another's calls: use another address, or ask the platform's administrator who holds it.`;
  }
  if (cause.includes('already authenticates trunk')) return `${what} is already on another trunk of this account (${cause}): remove it there first.`;
  return describe(error);
}

function Failure({ error, address }: { error: unknown; address?: string }) {
  if (error === undefined) return null;
  return <p class="problem" role="alert">{explain(error, address)}</p>;
}

export function Trunks({ accountId }: { accountId: string }) {
  const trunks = useLoad(async () => (await api<Trunk[]>('GET', `/accounts/${accountId}/trunks`)).data, [accountId]);
  const [chosen, setChosen] = useState<string | undefined>(undefined);
  const [name, setName] = useState('');
  const { error, busy, run } = useAction();
  useEffect(() => setChosen(undefined), [accountId]);
  const act = async (action: () => Promise<unknown>) => {
    if (await run(action)) void trunks.reload();
  };
  const create = async (event: Event) => {
    event.preventDefault();
    await act(async () => {
      const created = await api<Trunk>('PUT', `/accounts/${accountId}/trunks`, { name });
      setName('');
      setChosen(created.data.id);
    });
  };
  const trunk = trunks.data?.find((t) => t.id === chosen);
  return (
    <>
      <Section title="Trunks">
        <Failure error={trunks.error} />
        <div class="scroll">
          <table aria-label="Trunks">
            <thead>
              <tr><th>Name</th><th>State</th><th>Actions</th></tr>
            </thead>
            <tbody>
              {trunks.data?.map((t) => (
                <tr key={t.id} aria-selected={t.id === chosen}>
                  <td>{t.name}</td>
                  <td><span class={`badge ${t.enabled ? 'allow' : 'off'}`}>{t.enabled ? 'enabled' : 'disabled'}</span></td>
                  <td class="actions">
                    <button type="button" onClick={() => setChosen(t.id)} aria-pressed={t.id === chosen}>IP ACL entries</button>
                    <button type="button" class="secondary" disabled={busy} onClick={() => void act(() => api('PATCH', `/accounts/${accountId}/trunks/${t.id}`, { enabled: !t.enabled }))}>
                      {t.enabled ? 'Disable' : 'Enable'} <span class="sr-only">{t.name}</span>
                    </button>
                    <button type="button" class="danger" disabled={busy} onClick={() => void act(() => api('DELETE', `/accounts/${accountId}/trunks/${t.id}`))}>
                      Delete <span class="sr-only">{t.name}</span>
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
          {trunks.data?.length === 0 && <p class="muted">No trunk yet.</p>}
        </div>
        <form class="inline" onSubmit={create}>
          <label>
            New trunk name
            <input name="trunk-name" required value={name} onInput={(e) => setName(e.currentTarget.value)} />
          </label>
          <button type="submit" disabled={busy}>Create trunk</button>
        </form>
        <Failure error={error} />
      </Section>
      {trunk && <Entries key={trunk.id} accountId={accountId} trunk={trunk} />}
    </>
  );
}

function Entries({ accountId, trunk }: { accountId: string; trunk: Trunk }) {
  const base = `/accounts/${accountId}/trunks/${trunk.id}/ip_acls`;
  const entries = useLoad(async () => (await api<Entry[]>('GET', base)).data, [base]);
  const [address, setAddress] = useState('');
  const [description, setDescription] = useState('');
  const [tried, setTried] = useState('');
  const { error, busy, run } = useAction();
  const fields = fieldErrors(error);
  const act = async (action: () => Promise<unknown>) => {
    if (await run(action)) void entries.reload();
  };
  const add = async (event: Event) => {
    event.preventDefault();
    setTried(address);
    await act(async () => {
      await api('PUT', base, { ip_address: address, ...(description ? { description } : {}) });
      setAddress('');
      setDescription('');
    });
  };
  return (
    <>
      <Section title={`IP ACL entries of ${trunk.name}`}>
        <Failure error={entries.error} />
        <div class="scroll">
          <table aria-label="IP ACL entries">
            <thead>
              <tr><th>Address</th><th>Description</th><th>State</th><th>Actions</th></tr>
            </thead>
            <tbody>
              {entries.data?.map((e) => (
                <tr key={e.id}>
                  <td class="mono">{e.ip_address}</td>
                  <td>{e.description}</td>
                  <td><span class={`badge ${e.enabled ? 'allow' : 'off'}`}>{e.enabled ? 'enabled' : 'disabled'}</span></td>
                  <td class="actions">
                    <button type="button" class="secondary" disabled={busy} onClick={() => { setTried(e.ip_address); void act(() => api('PATCH', `${base}/${e.id}`, { enabled: !e.enabled })); }}>
                      {e.enabled ? 'Disable' : 'Enable'} <span class="sr-only">{e.ip_address}</span>
                    </button>
                    <button type="button" class="danger" disabled={busy} onClick={() => void act(() => api('DELETE', `${base}/${e.id}`))}>
                      Delete <span class="sr-only">{e.ip_address}</span>
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
          {entries.data?.length === 0 && <p class="muted">No entry: this trunk authenticates no address.</p>}
        </div>
        <form class="inline" onSubmit={add}>
          <label>
            Address (IP or CIDR, public)
            <input name="ip_address" class="mono" required value={address} aria-describedby="ip_address-error" onInput={(e) => setAddress(e.currentTarget.value)} />
            <FieldError id="ip_address-error" messages={fields.ip_address} />
          </label>
          <label>
            Description
            <input name="description" value={description} onInput={(e) => setDescription(e.currentTarget.value)} />
          </label>
          <button type="submit" disabled={busy}>Add entry</button>
        </form>
        {Object.keys(fields).length === 0 && <Failure error={error} address={tried} />}
      </Section>
      <Paste base={base} onDone={() => void entries.reload()} />
    </>
  );
}

/** One address per line, optionally `, description`; the API takes them one at a time. */
function Paste({ base, onDone }: { base: string; onDone: () => void }) {
  const addLine = (line: string) => {
    const [address, ...rest] = line.split(',').map((part) => part.trim());
    const description = rest.join(', ');
    return api('PUT', base, { ip_address: address, ...(description ? { description } : {}) });
  };
  return (
    <Lines
      title="Paste many entries"
      label="One address per line, optionally followed by a comma and a description"
      placeholder={'203.0.113.50, Office\n2001:db8:5::/48, Lab'}
      button="Add all"
      results="Paste results"
      send={addLine}
      explain={(error) => explain(error)}
      onDone={onDone}
    />
  );
}

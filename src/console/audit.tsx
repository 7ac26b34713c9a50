// The account's audit trail (api.md §2), newest first, filterable by resource, a page at a time.

import { useEffect, useState } from 'preact/hooks';
import { api } from './api.ts';
import { Problem, Section, useAction } from './ui.tsx';

const RESOURCES = ['accounts', 'users', 'devices', 'ips', 'access_lists', 'trunks', 'ip_acls'];

interface Entry {
  id: number;
  timestamp: string;
  action: 'create' | 'update' | 'delete';
  resource: string;
  resource_id: string;
  actor: { account_id: string; user_id?: string; api_key?: true };
  before?: Record<string, unknown>;
  after?: Record<string, unknown>;
}

const BOOKKEEPING = new Set(['id', 'created', 'modified', 'created_at', 'updated_at']);
const short = (value: unknown) => {
  const text = JSON.stringify(value) ?? '—';
  return text.length > 48 ? `${text.slice(0, 47)}…` : text;
};

/** The fields the change touched: old → new for an update, the values for a create or delete. */
function change(e: Entry): string {
  const before = e.before ?? {};
  const after = e.after ?? {};
  const fields = [...new Set([...Object.keys(before), ...Object.keys(after)])].filter((k) => !BOOKKEEPING.has(k) && JSON.stringify(before[k]) !== JSON.stringify(after[k]));
  return fields.map((k) => (e.action === 'update' ? `${k}: ${short(before[k])} → ${short(after[k])}` : `${k}: ${short(e.action === 'delete' ? before[k] : after[k])}`)).join('; ');
}

export function Audit({ accountId }: { accountId: string }) {
  const [resource, setResource] = useState('');
  const [entries, setEntries] = useState<Entry[]>([]);
  const [next, setNext] = useState<string | number | undefined>(undefined);
  const { error, busy, run } = useAction();
  const load = (from?: string | number) =>
    run(async () => {
      const query = new URLSearchParams({ page_size: '50', ...(resource ? { resource } : {}), ...(from !== undefined ? { start_key: String(from) } : {}) });
      const page = await api<Entry[]>('GET', `/accounts/${accountId}/audit?${query}`);
      setEntries((shown) => (from === undefined ? page.data : [...shown, ...page.data]));
      setNext(page.next_start_key);
    });
  useEffect(() => void load(), [accountId, resource]);
  return (
    <Section title="Audit trail (newest first)">
      <label>
        Resource
        <select value={resource} onChange={(e) => setResource(e.currentTarget.value)}>
          <option value="">all</option>
          {RESOURCES.map((r) => <option key={r}>{r}</option>)}
        </select>
      </label>
      <Problem error={error} />
      <div class="scroll">
        <table aria-label="Audit entries">
          <thead>
            <tr><th>When (UTC)</th><th>Action</th><th>Resource</th><th>Which</th><th>Change</th><th>Who</th></tr>
          </thead>
          <tbody>
            {entries.map((e) => (
              <tr key={e.id}>
                <td>{e.timestamp.replace('T', ' ').replace(/\.\d+Z$|Z$/, '')}</td>
                <td><span class={`badge ${e.action}`}>{e.action}</span></td>
                <td>{e.resource}</td>
                <td class="mono">{e.resource_id}</td>
                <td class="mono change">{change(e)}</td>
                <td class="mono">{e.actor.api_key ? 'API key of ' : ''}{e.actor.user_id ? `user ${e.actor.user_id.slice(0, 8)}… of ` : ''}{e.actor.account_id.slice(0, 8)}…</td>
              </tr>
            ))}
          </tbody>
        </table>
        {entries.length === 0 && !busy && <p class="muted">Nothing recorded.</p>}
      </div>
      {next !== undefined && <button type="button" disabled={busy} onClick={() => void load(next)}>Older entries</button>}
    </Section>
  );
}

// The caller's account and its descendants as a tree; picking one makes every page work in it.

import { api } from './api.ts';
import { Problem, Section, useLoad } from './ui.tsx';

export interface Account {
  id: string;
  name: string;
  realm: string;
  parent_id?: string;
  superduper_admin?: boolean;
}

export function Accounts({ root, current, onPick }: { root: Account; current: string; onPick: (account: Account) => void }) {
  const descendants = useLoad(async () => (await api<Account[]>('GET', `/accounts/${root.id}/descendants`)).data, [root.id]);
  const children = new Map<string, Account[]>();
  for (const account of descendants.data ?? []) {
    const siblings = children.get(account.parent_id ?? '') ?? [];
    siblings.push(account);
    children.set(account.parent_id ?? '', siblings);
  }
  const branch = (account: Account) => (
    <li key={account.id}>
      <button type="button" class="account" aria-pressed={account.id === current} onClick={() => onPick(account)}>
        {account.name} <span class="muted">{account.realm}</span>
      </button>
      {children.has(account.id) && <ul>{children.get(account.id)!.map(branch)}</ul>}
    </li>
  );
  return (
    <Section title="Account tree">
      <p class="muted">Pick the account to work in; every page then shows and changes that account.</p>
      <Problem error={descendants.error} />
      <ul class="tree">{branch(root)}</ul>
    </Section>
  );
}

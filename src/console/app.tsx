// The console's frame: the login until there is a session, then the account picker, the pages'
// navigation and the chosen page. The chosen account is where every page works.

import { useEffect, useRef, useState } from 'preact/hooks';
import { api, currentSession, logOut, whenExpired, type Session } from './api.ts';
import { AccessLists } from './access-lists.tsx';
import { Accounts, type Account } from './accounts.tsx';
import { Audit } from './audit.tsx';
import { DedicatedIps } from './ips.tsx';
import { Live } from './live.tsx';
import { Login } from './login.tsx';
import { Trunks } from './trunks.tsx';
import { Problem, useLoad } from './ui.tsx';

const PAGES = [
  ['accounts', 'Accounts'],
  ['ips', 'Dedicated IPs'],
  ['access-lists', 'Access lists'],
  ['trunks', 'Trunks'],
  ['audit', 'Audit'],
  ['live', 'Live'],
] as const;
type Page = (typeof PAGES)[number][0];

export function App() {
  const [session, setSession] = useState<Session | null>(currentSession());
  const [notice, setNotice] = useState<string | undefined>(undefined);
  useEffect(() => whenExpired(() => {
    setSession(null);
    setNotice('Your session has expired. Please log in again.');
  }), []);
  if (!session) return <Login notice={notice} onLogin={(s) => { setNotice(undefined); setSession(s); }} />;
  return <Workspace session={session} onLogOut={() => { setNotice('You are logged out.'); setSession(null); }} />;
}

function Workspace({ session, onLogOut }: { session: Session; onLogOut: () => void }) {
  const me = useLoad(async () => (await api<Account>('GET', `/accounts/${session.accountId}`)).data, [session.accountId]);
  const [accountId, setAccountId] = useState(session.accountId);
  const [account, setAccount] = useState<Account | undefined>(undefined);
  const [page, setPage] = useState<Page>('accounts');
  const heading = useRef<HTMLHeadingElement>(null);
  useEffect(() => { if (me.data && !account) setAccount(me.data); }, [me.data]);

  const go = (next: Page) => {
    setPage(next);
    // Keyboard and screen-reader users land on the new page's heading.
    requestAnimationFrame(() => heading.current?.focus());
  };
  const pick = (chosen: Account) => {
    setAccountId(chosen.id);
    setAccount(chosen);
  };
  const superduper = me.data?.superduper_admin === true;
  const title = PAGES.find(([key]) => key === page)![1];

  return (
    <div class="shell">
      <header class="top">
        <span class="brand">ipwarden</span>
        <span class="working-in" aria-live="polite">
          Account: <strong>{account?.name ?? '…'}</strong>
        </span>
        <button type="button" class="secondary" onClick={() => void logOut().finally(onLogOut)}>
          Log out
        </button>
      </header>
      <nav aria-label="Pages">
        {PAGES.map(([key, label]) => (
          <button type="button" key={key} aria-current={page === key ? 'page' : undefined} onClick={() => go(key)}>
            {label}
          </button>
        ))}
      </nav>
      <main>
        <h1 ref={heading} tabIndex={-1}>
          {title}
        </h1>
        <Problem error={me.error} />
        {me.data && (
          <>
            {page === 'accounts' && <Accounts root={me.data} current={accountId} onPick={pick} />}
            {page === 'ips' && <DedicatedIps accountId={accountId} superduper={superduper} />}
            {page === 'access-lists' && <AccessLists accountId={accountId} />}
            {page === 'trunks' && <Trunks accountId={accountId} />}
            {page === 'audit' && <Audit accountId={accountId} />}
            {page === 'live' && <Live superduper={superduper} />}
          </>
        )}
      </main>
    </div>
  );
}

// Log in as a KAZOO client does: account name, username, password → PUT /v2/user_auth.

import { useState } from 'preact/hooks';
import { logIn, type Session } from './api.ts';
import { Problem, useAction } from './ui.tsx';

export function Login({ onLogin, notice }: { onLogin: (session: Session) => void; notice?: string | undefined }) {
  const [account, setAccount] = useState('');
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const { error, busy, run } = useAction();
  const submit = (event: Event) => {
    event.preventDefault();
    void run(async () => onLogin(await logIn(account, username, password)));
  };
  return (
    <main class="login">
      <form class="card" onSubmit={submit} aria-labelledby="login-title">
        <h1 id="login-title">ipwarden</h1>
        {notice && <p class="notice" role="status">{notice}</p>}
        <label>
          Account name
          <input name="account" autocomplete="organization" required value={account} onInput={(e) => setAccount(e.currentTarget.value)} />
        </label>
        <label>
          Username
          <input name="username" autocomplete="username" required value={username} onInput={(e) => setUsername(e.currentTarget.value)} />
        </label>
        <label>
          Password
          <input name="password" type="password" autocomplete="current-password" required value={password} onInput={(e) => setPassword(e.currentTarget.value)} />
        </label>
        <Problem error={error} />
        <button type="submit" disabled={busy}>
          Log in
        </button>
      </form>
    </main>
  );
}

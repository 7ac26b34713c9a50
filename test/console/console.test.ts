// The web console in a real browser (issue 25): Debian's chromium driven by playwright-core against
// the whole server in this process (`serve`, port 0), doing what an operator does, by keyboard and
// mouse. Each page's screenshot goes to test-artifacts/console/.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { accessSync, constants, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Fastify from 'fastify';
import { chromium, type Browser, type Page } from 'playwright-core';
import { registerConsole } from '../../src/api/console.ts';
import { loadConfig } from '../../src/config.ts';
import { serve, type Server } from '../../src/main.ts';
import { bootstrapAccount } from '../../src/services/bootstrap.ts';
import { SYSTEM_ACTOR } from '../../src/services/actor.ts';
import { credentialsOf } from '../../src/services/passwords.ts';
import { startHarness, type Harness } from '../support/harness.ts';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const ARTIFACTS = join('test-artifacts', 'console');

function chromiumMissing(): string | null {
  try {
    accessSync(CHROMIUM, constants.X_OK);
    return null;
  } catch {
    return `chromium not found at ${CHROMIUM} (Debian package chromium; .ci/run installs it): the console's browser tests did not run`;
  }
}

// The console as `npm ci` builds it, from the source beside this test.
const built = spawnSync(process.execPath, ['scripts/build-console.js'], { encoding: 'utf8' });
assert.equal(built.status, 0, built.stderr);

describe('the console is served at / beside the API', () => {
  let h: Harness;
  before(async () => (h = await startHarness()));
  after(() => h.close());

  it('serves the page and its assets, from this origin only', async () => {
    const page = await h.request('GET', '/');
    assert.equal(page.statusCode, 200);
    assert.match(String(page.headers['content-type']), /^text\/html/);
    assert.match(page.body, /<script type="module" src="\/console.js"><\/script>/);
    assert.doesNotMatch(page.body, /https?:\/\//, 'nothing fetched from elsewhere');
    assert.match(String(page.headers['content-security-policy']), /default-src 'self'/);
    const script = await h.request('GET', '/console.js');
    assert.equal(script.statusCode, 200);
    assert.match(String(script.headers['content-type']), /^(application|text)\/javascript/);
    assert.doesNotMatch(script.body, /https?:\/\/(?!www\.w3\.org)[a-z]/i, 'the bundle names no other origin');
    assert.equal((await h.request('GET', '/console.css')).statusCode, 200);
  });

  it('says how to build it when it is not built', async () => {
    const bare = Fastify();
    await registerConsole(bare, join(tmpdir(), 'ipwarden-no-console', 'dist'));
    const response = await bare.inject({ method: 'GET', url: '/' });
    await bare.close();
    assert.equal(response.statusCode, 503);
    assert.deepEqual(response.json().data, { message: 'the web console is not built: run npm run build:console' });
  });

  it('leaves every other path to the API, in KAZOO\'s error shape', async () => {
    for (const [method, url] of [['GET', '/v2/nothing'], ['GET', '/nothing.js'], ['POST', '/'], ['GET', '/v2/']] as const) {
      const response = await h.request(method, url);
      assert.equal(response.statusCode, 404, `${method} ${url}`);
      assert.equal(response.headers['content-type'], 'application/json');
      assert.equal(response.json().message, 'bad_identifier');
    }
  });
});

const missing = chromiumMissing();
if (missing !== null && process.env.CI === 'true') {
  it('chromium is installed (CI runs the console in a browser)', () => assert.fail(missing));
}

describe('the web console in Chromium', { skip: missing ?? false, timeout: 180_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'ipwarden-console-'));
  let server: Server;
  let browser: Browser;
  let page: Page;
  let base: string;
  let masterId: string;
  let masterToken: string;
  const acme = { id: '', token: '' };
  /** Script errors and policy violations in the page: none is expected. */
  const pageErrors: string[] = [];

  /** The API as a client other than the browser (set-up and checks). */
  async function call(method: string, path: string, token: string, data?: unknown) {
    const response = await fetch(`${base}/v2${path}`, { method, headers: { 'x-auth-token': token }, ...(data === undefined ? {} : { body: JSON.stringify({ data }) }) });
    const body = (await response.json()) as { data: any; auth_token?: string };
    assert.ok(response.status < 300, `${method} ${path}: ${response.status} ${JSON.stringify(body)}`);
    return body.data;
  }
  async function login(realm: string, username: string, password: string) {
    const response = await fetch(`${base}/v2/user_auth`, { method: 'PUT', body: JSON.stringify({ data: { credentials: credentialsOf(username, password), account_realm: realm } }) });
    return ((await response.json()) as { auth_token: string }).auth_token;
  }
  async function tenant(name: string) {
    const realm = `${name.toLowerCase()}.console.test`;
    const account = await call('PUT', `/accounts/${masterId}`, masterToken, { name, realm });
    await call('PUT', `/accounts/${account.id}/users`, masterToken, { username: 'admin', password: 'pw', priv_level: 'admin' });
    return { id: account.id as string, token: await login(realm, 'admin', 'pw') };
  }
  const screenshot = (name: string) => page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
  const open = async (label: string) => {
    await page.getByRole('navigation', { name: 'Pages' }).getByRole('button', { name: label, exact: true }).click();
    await page.getByRole('heading', { level: 1, name: label }).waitFor();
  };
  /** Polls until `check` holds (the page answers asynchronously), else fails with `what`. */
  async function until(what: string, check: () => Promise<boolean>) {
    for (const started = Date.now(); Date.now() - started < 10_000; await new Promise((resolve) => setTimeout(resolve, 50))) {
      if (await check()) return;
    }
    assert.fail(`never true: ${what}`);
  }
  const section = (title: string) => page.getByRole('region', { name: title, exact: true });

  before(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    server = await serve(loadConfig({ db: join(dir, 'console.db'), port: '0', host: '127.0.0.1', logLevel: 'silent' }, {}));
    base = `http://127.0.0.1:${(server.app.server.address() as { port: number }).port}`;
    masterId = (await bootstrapAccount(server.services.ctx, SYSTEM_ACTOR, { name: 'Master', realm: 'master.console.test', username: 'admin', password: 'secret' })).id;
    masterToken = await login('master.console.test', 'admin', 'secret');
    Object.assign(acme, await tenant('Acme'));
    await call('PUT', `/accounts/${acme.id}/devices`, acme.token, { name: 'Desk', sip: { username: 'desk' } });
    // Another tenant holding a trunk block and a pool IP, which Acme must not get.
    const rival = await tenant('Rival');
    const trunk = await call('PUT', `/accounts/${rival.id}/trunks`, rival.token, { name: 'Rival PBX' });
    await call('PUT', `/accounts/${rival.id}/trunks/${trunk.id}/ip_acls`, rival.token, { ip_address: '192.0.2.0/24' });
    await call('PUT', '/ips', masterToken, { ip: '198.51.100.77', zone: 'eu-west', host: 'proxy9.example.com' });
    await call('POST', `/accounts/${rival.id}/ips/198.51.100.77`, masterToken);

    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-dev-shm-usage'] });
    page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    page.on('pageerror', (error) => pageErrors.push(error.message));
    page.on('console', (message) => {
      if (/Content Security Policy|Uncaught/.test(message.text())) pageErrors.push(message.text());
    });
    // Nothing may come from anywhere but the server itself.
    await page.route(/^(?!http:\/\/127\.0\.0\.1:\d+\/)/, (route) => route.abort());
  });

  after(async () => {
    await browser?.close();
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('logs in by keyboard alone; the token is kept out of the URL', async () => {
    const outside: string[] = [];
    page.on('request', (request) => {
      if (!request.url().startsWith(base)) outside.push(request.url());
    });
    await page.goto(base);
    await page.getByLabel('Account name').focus();
    await page.keyboard.type('Master');
    await page.keyboard.press('Tab');
    await page.keyboard.type('Admin');
    await page.keyboard.press('Tab');
    await page.keyboard.type('secret');
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { level: 1, name: 'Accounts' }).waitFor();
    // The account's name shows once its fetch is answered ('…' until then).
    await page.locator('.working-in', { hasText: 'Master' }).waitFor();
    const token = await page.evaluate(() => JSON.parse(sessionStorage.getItem('ipwarden.session') ?? '{}').token as string);
    assert.ok(token.length > 20);
    assert.ok(!page.url().includes(token));
    assert.deepEqual(outside, []);
  });

  it('shows the account tree and works in the account picked', async () => {
    const tree = section('Account tree');
    await tree.getByRole('button', { name: /Rival/ }).waitFor();
    await screenshot('accounts');
    await tree.getByRole('button', { name: /Acme/ }).click();
    assert.equal(await tree.getByRole('button', { name: /Acme/ }).getAttribute('aria-pressed'), 'true');
    await page.locator('.working-in', { hasText: 'Acme' }).waitFor();
  });

  it('adds a pool IP, imports a CSV with each refused row, assigns and sees per-IP refusals', async () => {
    await open('Dedicated IPs');
    const add = section('Add an IP to the pool');
    await add.getByLabel('IP').fill('198.51.100.10');
    await add.getByLabel('Zone').fill('us-east');
    await add.getByLabel('Host').fill('proxy1.us-east.example.com');
    await add.getByRole('button', { name: 'Add IP' }).click();
    const pool = section('Pool').getByRole('table', { name: 'Pool IPs' });
    await pool.getByRole('row', { name: /198\.51\.100\.10 us-east proxy1\.us-east\.example\.com available/ }).waitFor();

    const csv = section('Import a CSV');
    await csv.getByLabel('Rows (ip,zone,host)').fill('ip,zone,host\n198.51.100.11,us-east,proxy2.us-east.example.com\n198.51.100.10,us-east,proxy1.us-east.example.com\n198.51.100.300,us-east,proxy2.us-east.example.com\n');
    await csv.getByRole('button', { name: 'Import' }).click();
    await csv.getByRole('status').getByText('1 added, 2 refused.').waitFor();
    const results = csv.getByRole('list', { name: 'Import results' });
    assert.match(await results.getByRole('listitem').nth(0).innerText(), /line 2: 198\.51\.100\.11.* — added/);
    assert.match(await results.getByRole('listitem').nth(1).innerText(), /line 3: 198\.51\.100\.10.* — already in the pool/);
    assert.match(await results.getByRole('listitem').nth(2).innerText(), /line 4: 198\.51\.100\.300.* — ip: /);

    // The pool filtered by zone and status.
    await section('Pool').getByLabel('Zone').selectOption('eu-west');
    await until('only the one eu-west IP is listed', async () => (await pool.getByRole('row').count()) === 2);
    await pool.getByRole('row', { name: /198\.51\.100\.77 .* assigned/ }).waitFor();
    await section('Pool').getByLabel('Zone').selectOption('');
    await section('Pool').getByLabel('Status').selectOption('available');
    await until('no assigned IP is listed', async () => (await pool.getByRole('row', { name: /assigned/ }).count()) === 0);
    await pool.getByRole('row', { name: /198\.51\.100\.11/ }).waitFor();

    const available = section('Available to this account');
    await available.getByLabel(/198\.51\.100\.10/).check();
    await available.getByRole('button', { name: 'Assign selected' }).click();
    await available.getByRole('status').getByText('Assigned: 198.51.100.10').waitFor();
    await section('Assigned to this account').getByLabel(/198\.51\.100\.10/).waitFor();

    // All or nothing: one IP of another tenant and one unknown refuse the whole request, per IP.
    await available.getByLabel(/198\.51\.100\.11/).check();
    await available.getByLabel('Other IPs (separated by spaces or commas)').fill('198.51.100.77, 198.51.100.99');
    await available.getByRole('button', { name: 'Assign selected' }).click();
    const refusals = available.getByRole('list', { name: 'Assign results' });
    await refusals.waitFor();
    assert.match(await available.getByRole('alert').innerText(), /Nothing was assigned: the request is all or nothing/);
    assert.match(await refusals.getByRole('listitem').nth(0).innerText(), /198\.51\.100\.11 — fine/);
    assert.match(await refusals.getByRole('listitem').nth(1).innerText(), /198\.51\.100\.77 — ip assigned to another account/);
    assert.match(await refusals.getByRole('listitem').nth(2).innerText(), /198\.51\.100\.99 — ip not found/);
    const assigned = await call('GET', `/accounts/${acme.id}/ips/assigned`, acme.token);
    assert.deepEqual(assigned.map((i: { ip: string }) => i.ip), ['198.51.100.10']);
    await screenshot('dedicated-ips');

    // Release goes the same way back.
    const assignedBox = section('Assigned to this account');
    await assignedBox.getByLabel(/198\.51\.100\.10/).check();
    await assignedBox.getByRole('button', { name: 'Release selected' }).click();
    await assignedBox.getByRole('status').getByText('Released: 198.51.100.10').waitFor();
    await available.getByLabel(/198\.51\.100\.10/).waitFor();
    assert.deepEqual(await call('GET', `/accounts/${acme.id}/ips/assigned`, acme.token), []);
  });

  it('saves an access list: a bad CIDR is refused beside its row, the empty allow,deny warned of, then a good list saved', async () => {
    await open('Access lists');
    const editor = section('No list yet (every source allowed)');
    const warning = editor.getByText(/an allow,deny list with no CIDRs denies every source/);
    await warning.waitFor();
    await editor.getByLabel('CIDR 1', { exact: true }).fill('203.0.113.0/24');
    assert.equal(await warning.count(), 0, 'the warning goes once the list has a CIDR');
    await editor.getByRole('button', { name: 'Add a CIDR' }).click();
    await editor.getByLabel('CIDR 2', { exact: true }).fill('10.0.0.1/24');
    await editor.getByRole('button', { name: 'Save list' }).click();
    const error = page.locator('#cidr-1-error');
    await error.waitFor();
    assert.match(await error.innerText(), /host bits are set: did you mean 10\.0\.0\.0\/24\?/);
    assert.equal(await editor.getByLabel('CIDR 2', { exact: true }).getAttribute('aria-invalid'), 'true');
    assert.equal(await page.locator('#cidr-0-error').count(), 0, 'the good row has no error');
    assert.deepEqual(await call('GET', `/accounts/${acme.id}/access_lists`, acme.token), {}, 'nothing was stored');
    await screenshot('access-lists-error');

    await editor.getByLabel('CIDR 2', { exact: true }).fill('10.0.0.0/24');
    await editor.getByLabel(/User agent/).fill('^Yealink');
    await editor.getByRole('button', { name: 'Save list' }).click();
    await section('Edit the list').getByRole('status').getByText(/Saved/).waitFor();
    assert.deepEqual(await call('GET', `/accounts/${acme.id}/access_lists`, acme.token), { order: 'allow,deny', cidrs: ['203.0.113.0/24', '10.0.0.0/24'], user_agent: '^Yealink' });
  });

  it('tests a source and says which rule decided and why', async () => {
    const box = section('Test a source');
    await box.getByLabel('Source IP').fill('203.0.113.7');
    await box.getByLabel('User agent').fill('Yealink T46S');
    await box.getByRole('button', { name: 'Test' }).click();
    const verdict = box.getByRole('status', { name: 'Decision' });
    await verdict.waitFor();
    assert.match(await verdict.innerText(), /allow — decided by every list allows/);
    assert.match(await verdict.innerText(), /Account list: allow, the source is in 203\.0\.113\.0\/24 and the order is allow,deny/);

    await box.getByLabel('Source IP').fill('198.51.100.1');
    await box.getByRole('button', { name: 'Test' }).click();
    await verdict.getByText(/deny — decided by the account list/).waitFor();
    assert.match(await verdict.innerText(), /no CIDR holds the source and the order is allow,deny, so it is denied/);
    await screenshot('access-lists');
  });

  it('edits a device\'s list, and the test names the device list as the one that denied', async () => {
    await section('Which list').getByLabel('List of').selectOption({ label: 'device Desk (desk)' });
    const editor = section('No list yet (every source allowed)');
    await editor.getByLabel(/deny,allow/).check();
    await editor.getByLabel('CIDR 1', { exact: true }).fill('203.0.113.66');
    await editor.getByRole('button', { name: 'Save list' }).click();
    await section('Edit the list').getByRole('status').getByText(/Saved/).waitFor();
    const box = section('Test a source');
    assert.equal(await box.getByLabel('Device').inputValue(), (await call('GET', `/accounts/${acme.id}/devices`, acme.token))[0].id, 'the device being edited is the one tested');
    await box.getByLabel('Source IP').fill('203.0.113.66');
    await box.getByLabel('User agent').fill('Yealink T46S');
    await box.getByRole('button', { name: 'Test' }).click();
    const verdict = box.getByRole('status', { name: 'Decision' });
    await verdict.getByText(/Device list: deny, the source is in 203\.0\.113\.66 and the order is deny,allow, so it is denied/).waitFor();
    assert.match(await verdict.innerText(), /deny — decided by the device list\./);
    assert.match(await verdict.innerText(), /Account list: allow, the source is in 203\.0\.113\.0\/24/);
  });

  it('creates a trunk and an IP ACL entry, sees the 409 for another tenant\'s block in words, pastes many, disables one', async () => {
    // By keyboard: the page's button, then focus lands on the page's heading.
    await page.getByRole('navigation', { name: 'Pages' }).getByRole('button', { name: 'Trunks' }).focus();
    await page.keyboard.press('Enter');
    await until('focus moves to the Trunks heading', () => page.evaluate(() => document.activeElement?.tagName === 'H1' && document.activeElement.textContent === 'Trunks'));
    await section('Trunks').getByLabel('New trunk name').fill('Office PBX');
    await section('Trunks').getByRole('button', { name: 'Create trunk' }).click();
    const entries = section('IP ACL entries of Office PBX');
    await entries.getByLabel(/Address/).fill('203.0.113.50');
    await entries.getByLabel('Description').fill('Office static IP');
    await entries.getByRole('button', { name: 'Add entry' }).click();
    const table = entries.getByRole('table', { name: 'IP ACL entries' });
    await table.getByRole('row', { name: /203\.0\.113\.50 Office static IP enabled/ }).waitFor();

    await entries.getByLabel(/Address/).fill('192.0.2.10');
    await entries.getByRole('button', { name: 'Add entry' }).click();
    const refusal = entries.getByRole('alert');
    await refusal.waitFor();
    assert.match(await refusal.innerText(), /192\.0\.2\.10 overlaps an address that already authenticates a trunk of another account\. An address can authenticate one tenant only/);
    await screenshot('trunks-conflict');

    const paste = section('Paste many entries');
    await paste.getByLabel(/One address per line/).fill('198.51.100.200, Branch office\n192.0.2.77\n10.1.2.3\n');
    await paste.getByRole('button', { name: 'Add all' }).click();
    const results = paste.getByRole('list', { name: 'Paste results' });
    await results.waitFor();
    assert.match(await results.getByRole('listitem').nth(0).innerText(), /line 1: 198\.51\.100\.200, Branch office — added/);
    assert.match(await results.getByRole('listitem').nth(1).innerText(), /line 2: 192\.0\.2\.77 — This address overlaps an address that already authenticates a trunk of another account/);
    assert.match(await results.getByRole('listitem').nth(2).innerText(), /line 3: 10\.1\.2\.3 — ip_address: .*private/i);
    await table.getByRole('row', { name: /198\.51\.100\.200 Branch office enabled/ }).waitFor();

    await table.getByRole('button', { name: 'Disable 198.51.100.200' }).click();
    await table.getByRole('row', { name: /198\.51\.100\.200 Branch office disabled/ }).waitFor();
    const stored = await call('GET', `/accounts/${acme.id}/ip_acls`, acme.token);
    assert.deepEqual(stored.map((e: { ip_address: string; enabled: boolean }) => [e.ip_address, e.enabled]).sort(), [['198.51.100.200', false], ['203.0.113.50', true]]);
    await screenshot('trunks');

    // A trunk disabled, then deleted.
    const trunks = section('Trunks');
    await trunks.getByLabel('New trunk name').fill('Spare');
    await trunks.getByRole('button', { name: 'Create trunk' }).click();
    const spare = trunks.getByRole('row', { name: /Spare/ });
    await spare.getByText('enabled').waitFor();
    await spare.getByRole('button', { name: 'Disable Spare' }).click();
    await spare.getByText('disabled').waitFor();
    await spare.getByRole('button', { name: 'Delete Spare' }).click();
    await until('the deleted trunk is gone', async () => (await spare.count()) === 0);
    assert.deepEqual((await call('GET', `/accounts/${acme.id}/trunks`, acme.token)).map((t: { name: string }) => t.name), ['Office PBX']);
  });

  it('reads the audit trail newest first, filtered by resource', async () => {
    await open('Audit');
    const table = section('Audit trail (newest first)').getByRole('table', { name: 'Audit entries' });
    const first = table.getByRole('row').nth(1);
    await first.waitFor();
    assert.match(await first.innerText(), /delete\s+trunks\s+\S+\s+name: "Spare"/, 'the deleted trunk is the newest change');
    await table.getByRole('row', { name: /update ip_acls \S+ enabled: true → false/ }).waitFor();
    await section('Audit trail (newest first)').getByLabel('Resource').selectOption('access_lists');
    await until('only the two access-list changes are listed', async () => (await table.getByRole('row').count()) === 3);
    await table.getByRole('row', { name: new RegExp(`create access_lists ${acme.id}`) }).waitFor();
    const device = (await call('GET', `/accounts/${acme.id}/devices`, acme.token))[0].id as string;
    assert.match(await table.getByRole('row').nth(1).innerText(), new RegExp(`create\\s+access_lists\\s+${device}`), 'the device list, saved last, comes first');
    await screenshot('audit');
  });

  it('draws live decisions per second', async () => {
    await open('Live');
    const chart = section('Decisions per second');
    await chart.locator('svg[role="img"]').waitFor();
    // Decisions from another client while the page watches.
    let deciding = true;
    const traffic = (async () => {
      for (let i = 0; deciding; i++) {
        const ip = i % 3 === 0 ? '198.51.100.1' : '203.0.113.9';
        await fetch(`${base}/v2/accounts/${acme.id}/access_lists/check?ip=${ip}&user_agent=Yealink`, { headers: { 'x-auth-token': acme.token } });
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    })();
    try {
      await chart.locator('polyline.line.allow').waitFor({ timeout: 15_000 });
      await page.waitForFunction(() => Number(document.querySelector('.figure.allow strong')?.textContent) > 0, undefined, { timeout: 15_000 });
      const denied = Number(await chart.locator('.figure.deny strong').innerText());
      assert.ok(denied > 0, `denied per second: ${denied}`);
    } finally {
      deciding = false;
      await traffic;
    }
    await screenshot('live');
  });

  it('is usable at a phone\'s width', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    // Each page with what it loads shown: the widest content is what could overflow.
    const pages = [
      ['Access lists', 'phone-access-lists', () => section('Edit the list').getByLabel('CIDR 2', { exact: true })],
      ['Trunks', 'phone-trunks', () => section('Trunks').getByRole('row', { name: /Office PBX/ })],
      ['Dedicated IPs', 'phone-dedicated-ips', () => section('Pool').getByRole('row', { name: /198\.51\.100\.77/ })],
      ['Audit', 'phone-audit', () => section('Audit trail (newest first)').getByRole('row').nth(1)],
    ] as const;
    for (const [label, name, loaded] of pages) {
      await open(label);
      await loaded().waitFor();
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
      assert.ok(overflow <= 0, `${label}: the page is ${overflow}px wider than the phone`);
      await screenshot(name);
    }
    await page.setViewportSize({ width: 1280, height: 800 });
  });

  it('brings the login back when the token is revoked, and logs out', async () => {
    const token = await page.evaluate(() => JSON.parse(sessionStorage.getItem('ipwarden.session') ?? '{}').token as string);
    await call('DELETE', '/token_auth', token);
    // The next page's first request meets the refusal.
    await page.getByRole('navigation', { name: 'Pages' }).getByRole('button', { name: 'Access lists' }).click();
    await page.getByText('Your session has expired. Please log in again.').waitFor();
    await page.getByRole('button', { name: 'Log in' }).waitFor();

    await page.getByLabel('Account name').fill('master');
    await page.getByLabel('Username').fill('admin');
    await page.getByLabel('Password').fill('secret');
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.getByRole('heading', { level: 1, name: 'Accounts' }).waitFor();
    const second = await page.evaluate(() => JSON.parse(sessionStorage.getItem('ipwarden.session') ?? '{}').token as string);
    await page.getByRole('button', { name: 'Log out' }).click();
    await page.getByText('You are logged out.').waitFor();
    assert.equal(await page.evaluate(() => sessionStorage.getItem('ipwarden.session')), null);
    const after = await fetch(`${base}/v2/token_auth`, { headers: { 'x-auth-token': second } });
    assert.equal(after.status, 401, 'the token was revoked on the server');
  });

  it('ran without a script error or a security-policy violation', () => assert.deepEqual(pageErrors, []));
});

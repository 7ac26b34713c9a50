// The `ipwarden` command: serve, create-account, and the dedicated-IP maintenance verbs
// (the `sup crossbar_maintenance` / `sup kazoo_ips_maintenance` equivalents, api.md §2, §3).

import { Command, Option } from 'commander';
import { readFileSync } from 'node:fs';
import { describeConfig, loadConfig, SETTINGS, type Config } from '../config.ts';
import { serve, startServices, type Services } from '../main.ts';
import { bootstrapAccount } from '../services/bootstrap.ts';
import { SYSTEM_ACTOR } from '../services/actor.ts';
import { Failure } from '../services/errors.ts';
import * as ips from '../services/ips.ts';
import { exportFreeswitchAcl, exportKamailioAddress } from '../services/exports.ts';
import { importFreeswitchAcl, importKamailioAddress } from '../services/imports.ts';
import { collect, formatReport, kamailioMapping, listMapping } from './migration.ts';
import { addImportVerbs } from './imports.ts';

function withSettings(command: Command): Command {
  for (const s of SETTINGS) command.addOption(new Option(s.flag, `${s.description} (env ${s.env}${s.fallback === undefined ? '' : `, default ${String(s.fallback)}`})`));
  return command;
}

function configOf(command: Command): Config {
  return loadConfig(command.opts());
}

/** Runs a verb against the services, printing a failure's message and exiting non-zero. */
async function withServices(command: Command, fn: (services: Services) => Promise<void>): Promise<void> {
  const services = await startServices(configOf(command));
  if (services.notice) console.error(services.notice);
  try {
    await fn(services);
  } catch (error) {
    if (!(error instanceof Failure)) throw error;
    const fields = Object.entries(error.details.fields ?? {}).flatMap(([field, rules]) => Object.values(rules).map((r) => `${field}: ${r.message}`));
    console.error([error.message === 'validation error' && fields.length > 0 ? undefined : error.message, ...fields].filter(Boolean).join('\n'));
    if (error.details.cause) console.error(String(error.details.cause));
    process.exitCode = 1;
  } finally {
    await services.close();
  }
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n');
}

/** `ips import` CSV: `ip,zone,host` per line; a header line and blank lines are skipped. */
function readCsv(file: string) {
  return readFileSync(file, 'utf8')
    .split(/\r?\n/)
    .map((line, i) => ({ line: i + 1, cells: line.split(',').map((c) => c.trim()) }))
    .filter(({ cells, line }) => !(cells.length === 1 && cells[0] === '') && !(line === 1 && cells[0]?.toLowerCase() === 'ip'))
    .map(({ line, cells }) => ({ line, ip: cells[0] ?? '', zone: cells[1] ?? '', host: cells.slice(2).join(',') }));
}

export function program(): Command {
  const root = new Command('ipwarden').description('IP access control for VoIP platforms: a KAZOO-compatible API, dedicated IPs, access lists, trunk IP ACLs and a SIP edge').showHelpAfterError();

  withSettings(root.command('serve').description('Serve the API (and the SIP edge with --sip)')).action(async (_options, command: Command) => {
    const config = configOf(command);
    const server = await serve(config);
    server.app.log.info({ config: describeConfig(config) }, 'ipwarden serving');
    // A supervisor's SIGTERM (or ^C): no new requests, those in flight finished, sockets and log
    // closed, exit 0 (README: "Running under a supervisor").
    const stop = async (signal: NodeJS.Signals) => {
      server.app.log.info({ signal }, `${signal}: ipwarden stopping, finishing the requests in flight`);
      await server.close();
      process.exit(0);
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    // A renewed certificate is also picked up when its file changes; SIGHUP does it at once.
    process.on('SIGHUP', () => server.reloadCertificates());
  });

  withSettings(root.command('create-account').description('Create an account with an admin user; the first account is the superduper master').argument('<name>').argument('<realm>').argument('<username>').argument('<password>')).action(
    async (name: string, realm: string, username: string, password: string, _options, command: Command) => {
      await withServices(command, async ({ ctx }) => {
        const account = await bootstrapAccount(ctx, SYSTEM_ACTOR, { name, realm, username, password });
        console.log(account.id);
      });
    },
  );

  const pool = root.command('ips').description('Maintain the dedicated IP pool (kazoo_ips_maintenance)');
  withSettings(pool.command('add').description('Add an IP to the pool').argument('<ip>').argument('<zone>').argument('<host>')).action(async (ip: string, zone: string, host: string, _o, command: Command) => {
    await withServices(command, async ({ ctx }) => {
      const row = await ips.addPoolIp(ctx, SYSTEM_ACTOR, { ip, zone, host });
      console.log(`added IP ${row.ip} to available dedicated ips`);
    });
  });
  withSettings(pool.command('assign').description('Assign a pool IP to an account').argument('<ip>').argument('<account_id>')).action(async (ip: string, accountId: string, _o, command: Command) => {
    await withServices(command, async ({ ctx }) => {
      const row = await ips.assignIp(ctx, SYSTEM_ACTOR, accountId, ip);
      console.log(`assigned IP ${row.ip} to ${accountId}`);
    });
  });
  withSettings(pool.command('release').description('Release an assigned IP back to the pool').argument('<ip>')).action(async (ip: string, _o, command: Command) => {
    await withServices(command, async ({ ctx }) => {
      const row = await ips.releaseIpAnywhere(ctx, SYSTEM_ACTOR, ip);
      console.log(`released IP ${row.ip}`);
    });
  });
  withSettings(pool.command('delete').description('Remove an unassigned IP from the pool').argument('<ip>')).action(async (ip: string, _o, command: Command) => {
    await withServices(command, async ({ ctx }) => {
      const row = await ips.deletePoolIp(ctx, SYSTEM_ACTOR, ip);
      console.log(`deleted IP ${row.ip}`);
    });
  });
  withSettings(pool.command('summary').description('Table of the pool (optionally one host)').argument('[host]')).action(async (host: string | undefined, _o, command: Command) => {
    await withServices(command, async ({ ctx }) => {
      const rows = await ips.listPool(ctx, SYSTEM_ACTOR, host === undefined ? {} : { host });
      console.log(table([['IP', 'Status', 'Zone', 'Host', 'Account'], ...rows.map((r) => [r.ip, r.assignedTo ? 'assigned' : 'available', r.zone, r.host, r.assignedTo ?? ''])]));
    });
  });
  withSettings(pool.command('import').description('Add every ip,zone,host row of a CSV file, all or nothing').argument('<file>')).action(async (file: string, _o, command: Command) => {
    await withServices(command, async ({ ctx }) => {
      const rows = await ips.importPoolIps(ctx, SYSTEM_ACTOR, readCsv(file));
      console.log(`imported ${rows.length} IPs`);
    });
  });

  // api.md §9: what other SBCs load, and migration from their files.
  const exporting = root.command('export').description('Print what other SBCs load (Kamailio, FreeSWITCH)');
  withSettings(exporting.command('kamailio-address').description("Every active trunk entry in Kamailio's permissions address-file format")).action(async (_o, command: Command) => {
    await withServices(command, async ({ ctx }) => void process.stdout.write(await exportKamailioAddress(ctx, SYSTEM_ACTOR, configOf(command).kamailioGroup)));
  });
  withSettings(exporting.command('freeswitch-acl').description("FreeSWITCH's acl.conf: one network list per account access list, one of every active trunk entry")).action(async (_o, command: Command) => {
    await withServices(command, async ({ ctx }) => void process.stdout.write(await exportFreeswitchAcl(ctx, SYSTEM_ACTOR)));
  });
  const importing = root.command('import').description('Move SBC files into ipwarden: all or nothing, --dry-run to see what would happen');
  withSettings(
    importing.command('kamailio-address').description('Trunk entries from a Kamailio permissions address file').argument('<file>')
      .option('--dry-run', 'report what would be created and refused; write nothing')
      .option('--map <GROUP=ACCOUNT_ID:TRUNK_ID>', "a group's records go to this trunk (repeatable)", collect, [])
      .option('--tag <TAG=ACCOUNT_ID:TRUNK_ID>', "a tag's records go to this trunk, whatever their group (repeatable)", collect, []),
  ).action(async (file: string, options: { dryRun?: boolean; map: string[]; tag: string[] }, command: Command) => {
    await withServices(command, async ({ ctx }) => {
      const report = await importKamailioAddress(ctx, SYSTEM_ACTOR, readFileSync(file, 'utf8'), kamailioMapping(options), { dryRun: options.dryRun === true });
      console.log(formatReport(report, options.dryRun === true));
      if (!report.applied && options.dryRun !== true) process.exitCode = 1;
    });
  });
  withSettings(
    importing.command('freeswitch-acl').description("Account access lists from FreeSWITCH's acl.conf network lists").argument('<file>')
      .option('--dry-run', 'report what would be created and refused; write nothing')
      .option('--list <NAME=ACCOUNT_ID>', 'this network list becomes the account\'s access list (repeatable; ipwarden-ACCOUNT_ID lists map themselves)', collect, []),
  ).action(async (file: string, options: { dryRun?: boolean; list: string[] }, command: Command) => {
    await withServices(command, async ({ ctx }) => {
      const report = await importFreeswitchAcl(ctx, SYSTEM_ACTOR, readFileSync(file, 'utf8'), listMapping(options), { dryRun: options.dryRun === true });
      console.log(formatReport(report, options.dryRun === true));
      if (!report.applied && options.dryRun !== true) process.exitCode = 1;
    });
  });
  addImportVerbs(root, { withSettings, withServices });
  return root;
}

try {
  await program().parseAsync(process.argv);
} catch (error) {
  console.error(error instanceof Error ? error.message : String(error));
  process.exitCode = 1;
}

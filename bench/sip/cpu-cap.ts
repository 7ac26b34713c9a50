// An equal CPU budget for each contender (`bench:sip --cpu-cap F`): Linux's CFS bandwidth control
// lets a contender's processes run F of one core in every 10 ms period. On a machine where sipp
// tops out before either contender does (two cores shared with the load generator), the ladder
// then finds where each contender runs out of its budget, and the rates compare what the same CPU
// buys. cgroup v1's `cpu` controller or cgroup v2 with `cpu` enabled; root is needed to write them.
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const PERIOD_US = 10_000;
const V1_ROOT = '/sys/fs/cgroup/cpu';
const V2_ROOT = '/sys/fs/cgroup';

export class CpuCap {
  private constructor(
    private readonly root: string,
    private readonly v2: boolean,
    readonly fraction: number,
  ) {}

  /** The cap, or why this machine cannot set one. */
  static open(fraction: number): CpuCap | string {
    if (!(fraction > 0 && fraction <= 8)) return `--cpu-cap must be a share of a core in (0, 8], got ${fraction}`;
    const v2 = !existsSync(join(V1_ROOT, 'cpu.cfs_quota_us'));
    const root = v2 ? V2_ROOT : V1_ROOT;
    if (v2 && !readable(join(V2_ROOT, 'cgroup.subtree_control')).split(' ').includes('cpu')) return 'no cgroup cpu controller to write (cgroup v1 cpu, or v2 with cpu enabled)';
    const cap = new CpuCap(root, v2, fraction);
    cap.removeLeftovers();
    try {
      const probe = cap.group('probe');
      cap.release(probe);
    } catch (error) {
      return `cannot make a cgroup under ${root}: ${(error as Error).message}`;
    }
    return cap;
  }

  /** A new group holding the budget; `pids` (whole processes, threads included) moved into it. */
  group(name: string, pids: readonly number[] = []): string {
    const dir = join(this.root, `ipwarden-bench-${process.pid}-${name}`);
    mkdirSync(dir, { recursive: true });
    const quota = Math.round(this.fraction * PERIOD_US);
    if (this.v2) writeFileSync(join(dir, 'cpu.max'), `${quota} ${PERIOD_US}`);
    else {
      writeFileSync(join(dir, 'cpu.cfs_period_us'), String(PERIOD_US));
      writeFileSync(join(dir, 'cpu.cfs_quota_us'), String(quota));
    }
    for (const pid of pids) writeFileSync(join(dir, 'cgroup.procs'), String(pid));
    return dir;
  }

  /** Groups an interrupted bench left behind (its pid gone), emptied and removed. */
  private removeLeftovers(): void {
    for (const name of readdirSync(this.root)) {
      const pid = /^ipwarden-bench-(\d+)-/.exec(name)?.[1];
      if (pid !== undefined && !existsSync(`/proc/${pid}`)) this.release(join(this.root, name));
    }
  }

  /** Moves what is left in the group back to the root and removes it. */
  release(dir: string): void {
    for (const pid of readable(join(dir, 'cgroup.procs')).split('\n').filter(Boolean)) {
      try {
        writeFileSync(join(this.root, 'cgroup.procs'), pid);
      } catch {
        // exited meanwhile
      }
    }
    rmdirSync(dir);
  }
}

function readable(file: string): string {
  try {
    return readFileSync(file, 'utf8').trim();
  } catch {
    return '';
  }
}

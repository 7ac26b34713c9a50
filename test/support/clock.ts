// A clock for the authenticator (token expiry, the token cache's second, the login window) that a
// test moves by hand instead of sleeping.

export class TestClock {
  private offset = 0;
  private readonly frozenAt: number | undefined;

  /** 'frozen': stands still until advanced; 'running': real time plus what was advanced. */
  constructor(mode: 'frozen' | 'running') {
    this.frozenAt = mode === 'frozen' ? Date.now() : undefined;
  }

  readonly now = (): number => (this.frozenAt ?? Date.now()) + this.offset;

  advance(ms: number): void {
    this.offset += ms;
  }
}

import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import type { FastifyBaseLogger } from 'fastify';

/**
 * Keeps a child process running: restarts it when it exits (with a growing delay
 * when it keeps dying), until stop() is called.
 */
export class Supervised {
  private child?: ChildProcess;
  private stopping = false;
  private restarts = 0;
  private startedAt = 0;
  private timer?: NodeJS.Timeout;

  constructor(
    readonly name: string,
    private readonly command: string,
    private readonly args: string[],
    private readonly options: SpawnOptions,
    private readonly log: FastifyBaseLogger,
    /** Called after each (re)start, e.g. to wait until the child is ready. */
    private readonly onStart?: (child: ChildProcess) => Promise<void>,
  ) {}

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Starts the child and supervises it (again, after preventRestart or stop). */
  async start(): Promise<void> {
    this.stopping = false;
    this.startedAt = Date.now();
    const child = spawn(this.command, this.args, { stdio: ['ignore', 'inherit', 'inherit'], ...this.options });
    this.child = child;
    child.on('exit', (code, signal) => {
      if (this.stopping) return;
      // A child that ran a while is healthy again: reset the back-off.
      if (Date.now() - this.startedAt > 30_000) this.restarts = 0;
      const delay = Math.min(200 * 2 ** this.restarts++, 10_000);
      this.log.warn({ child: this.name, code, signal, restart_in_ms: delay }, 'child process exited; restarting');
      this.timer = setTimeout(() => {
        this.start().catch((err) => this.log.error({ err, child: this.name }, 'restart failed'));
      }, delay);
    });
    await this.onStart?.(child);
  }

  /**
   * No more restarts from now on. Shutdown calls this first: a Ctrl-C reaches the
   * children too, and one that exits from it must not be started again.
   */
  preventRestart(): void {
    this.stopping = true;
    clearTimeout(this.timer);
  }

  /** Stops the child with SIGTERM, then SIGKILL after `graceMs`. Idempotent. */
  async stop(graceMs = 10_000): Promise<void> {
    this.preventRestart();
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      const kill = setTimeout(() => child.kill('SIGKILL'), graceMs);
      child.once('exit', () => {
        clearTimeout(kill);
        resolve();
      });
      child.kill('SIGTERM');
    });
  }
}

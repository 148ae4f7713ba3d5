import type { Entrypoint, EntryRef } from './entrypoint.js';
import type { RouteEnv } from './routeEnv.js';

/**
 * A route's entrypoints, started, stopped and closed together, in order. A stop or close that
 * fails is logged (never thrown): the other entrypoints still stop and close.
 */
export class RouteEntrypoints<In> {
  constructor(
    readonly list: readonly Entrypoint<In>[],
    private readonly env: RouteEnv,
  ) {}

  async start(): Promise<void> {
    for (const ep of this.list) await ep.start();
  }

  /** Stops their intake; resolves with what they handed back. `log`: warn about a failed stop. */
  async stop(log = true): Promise<EntryRef[]> {
    const returned: EntryRef[] = [];
    for (const ep of this.list) {
      try {
        returned.push(...(await ep.stop()).returned);
      } catch (err) {
        if (log)
          this.env.logger.warn(
            { err, route: this.env.label, entrypoint: ep.name },
            'entrypoint stop failed',
          );
      }
    }
    return returned;
  }

  async close(): Promise<void> {
    for (const ep of this.list) {
      try {
        await ep.close();
      } catch (err) {
        this.env.logger.warn(
          { err, route: this.env.label, entrypoint: ep.name },
          'entrypoint close failed',
        );
      }
    }
  }
}

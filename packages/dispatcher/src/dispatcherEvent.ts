/** Identifies an instance in events. */
export interface InstanceRef {
  readonly module: string;
  readonly version: string;
  readonly instance: string;
}

/** Everything a dispatcher reports through `dispatcher.on(listener)`. */
export type DispatcherEvent =
  | (InstanceRef & {
      readonly type: 'instance-starting' | 'instance-stopping' | 'instance-stopped';
      readonly pid: number | undefined;
    })
  | (InstanceRef & {
      readonly type: 'instance-ready';
      readonly pid: number | undefined;
      readonly port: number | undefined;
      /** Time from start to ready (cold start), ms. */
      readonly startMs: number;
    })
  | (InstanceRef & {
      readonly type: 'instance-died';
      readonly pid: number | undefined;
      readonly code: number | null;
      readonly signal: string | null;
    })
  | (InstanceRef & { readonly type: 'instance-start-failed'; readonly error: unknown })
  | (InstanceRef & {
      readonly type: 'instance-restart-scheduled';
      readonly attempt: number;
      readonly delayMs: number;
      /** `start-failed` (crash loop), `died` or `unhealthy`. */
      readonly reason: 'start-failed' | 'died' | 'unhealthy';
    })
  | (InstanceRef & { readonly type: 'instance-gave-up'; readonly restarts: number })
  | (InstanceRef & { readonly type: 'instance-unhealthy'; readonly reason: string })
  | (InstanceRef & { readonly type: 'instance-healthy' })
  | {
      readonly type: 'scale';
      readonly module: string;
      readonly version: string;
      readonly from: number;
      readonly to: number;
      readonly reason: string;
    }
  | { readonly type: 'rules-reloaded'; readonly file: string; readonly rules: number }
  | { readonly type: 'rules-reload-failed'; readonly file: string; readonly error: unknown }
  | {
      readonly type: 'event-fired';
      readonly id: string;
      readonly service: string | undefined;
      readonly eventId: string | undefined;
    }
  | {
      readonly type: 'event-error';
      readonly id: string;
      readonly service: string | undefined;
      readonly eventId: string | undefined;
      readonly error: unknown;
    }
  | {
      readonly type: 'async-request-settled';
      readonly requestId: string;
      readonly status: number | undefined;
      readonly error: unknown;
    }
  | { readonly type: 'error'; readonly where: string; readonly error: unknown };

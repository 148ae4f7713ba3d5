import { randomUUID } from 'node:crypto';
import type { Dispatcher, EventStore } from '@x/dispatcher';
import { errorCode, exponentialBackoff, isXError, retry } from '@x/resilience';
import {
  asyncBackoff,
  bullmqEntrypoint,
  type BullmqEntrypoint,
  httpEntrypoint,
  json,
  memoryQueue,
  route,
  schema,
  validator,
  type BullmqJobInfo,
  type Entrypoint,
  type HttpEntrypoint,
  type Route,
} from '@x/routes';
import type { ResilienceConfig } from './config.js';
import type { EventLog } from './eventLog.js';
import { GatewayError } from './gatewayError.js';
import {
  checkReportRequest,
  reportRequest,
  type Report,
  type ReportRequest,
} from './reportsApi.js';
import type { ReportsClient } from './reportsClient.js';

/** A queued report job: the request plus its id (and, in the job data, when it was submitted). */
export interface ReportJob extends ReportRequest {
  readonly id: string;
  /** Epoch ms of the submit (kept in the job, so every replica answers the same). */
  readonly submittedAt?: number;
  /** Epoch ms a scheduled job was due. */
  readonly runAt?: number;
}

/** `POST /api/report-jobs` body: a report request, optionally run later. */
export interface ReportJobRequest extends ReportRequest {
  /** Run after this many ms: a dispatcher event (durable with Redis) publishes the job then. */
  readonly runInMs?: number;
}

/** What `GET /api/report-jobs/:id` answers. */
export interface ReportJobState {
  readonly id: string;
  readonly kind: ReportRequest['kind'];
  state: 'scheduled' | 'queued' | 'running' | 'done' | 'failed';
  readonly submittedAt: number;
  runAt?: number;
  finishedAt?: number;
  attempts: number;
  result?: { readonly total: number; readonly rows: number; readonly worker: Report['worker'] };
  error?: { readonly code: string; readonly message: string };
}

/** Options of {@link createReportJobs}. */
export interface ReportJobsOptions {
  readonly dispatcher: Dispatcher;
  readonly reports: ReportsClient;
  readonly config: ResilienceConfig['reports'];
  readonly events: EventLog;
  /** With a URL: a BullMQ queue on Redis; without: an in-process `memoryQueue`. */
  readonly redisUrl: string | undefined;
  /** Queue name prefix (BullMQ keys, the dead-letter queue). */
  readonly prefix: string;
  /**
   * The dispatcher's event store (with Redis: shared by the replicas): a scheduled job's status
   * is read from it until its event publishes the job.
   */
  readonly eventStore?: EventStore;
}

/** The report-job routes and their state, see {@link createReportJobs}. */
export interface ReportJobs {
  /** The queue route (processes jobs) and the HTTP route (submits them). */
  readonly routes: ReadonlyArray<Route<any, any, any, any>>;
  readonly submitEntrypoint: HttpEntrypoint<unknown>;
  readonly mode: 'bullmq' | 'memory';
  /**
   * A job's state. With Redis it comes from the shared store (BullMQ's job state, or the event
   * store while a scheduled job waits), so every replica answers the same whichever ran it;
   * `QUEUE_UNAVAILABLE` (503) when Redis cannot answer. In memory: this process's own jobs.
   */
  get(id: string): Promise<ReportJobState | undefined>;
  /** Counts by state and the latest jobs this replica submitted or ran, for the dashboard. */
  snapshot(): { readonly counts: Record<string, number>; readonly latest: ReportJobState[] };
  /** With Redis: updates the unfinished jobs of {@link snapshot} from the shared store. */
  refresh(): Promise<void>;
}

const EVENT_HANDLER = 'report-job';
const MAX_JOBS = 1_000;
/** Deadline of the Redis write on the submit path (BullMQ add, or the event store's put). */
export const REDIS_DEADLINE_MS = 2_000;
/**
 * A scheduled job's publish, when its event fires while Redis is unusable: tried again for about
 * 30 s (well within the event's 60 s lease; the job id makes a repeated add a no-op), so the
 * event is not completed (and forgotten) with its job unqueued.
 */
const publishAgain = retry({
  maxRetries: 15,
  backoff: exponentialBackoff({ initialMs: 250, maxMs: 2_000 }),
  retryOn: error => isXError(error, 'BROKER_UNAVAILABLE'),
});

/** A report request plus `runInMs`; refusals name the field, the expected and the received value. */
const jobRequest = validator<ReportJobRequest>((value, refuse) => {
  checkReportRequest(value, refuse);
  const runInMs = (value as { runInMs?: unknown }).runInMs;
  if (
    runInMs !== undefined &&
    !(typeof runInMs === 'number' && runInMs >= 0 && runInMs <= 86_400_000)
  )
    refuse('runInMs', 'a number of ms from 0 to 86400000', runInMs);
  return value as ReportJobRequest;
});

/**
 * Report jobs on a queue entrypoint of `@x/routes`: `bullmqEntrypoint` on Redis when `REDIS_URL`
 * is set (durable, retried with delayed jobs, dead letters in `<queue>-dead`), `memoryQueue`
 * otherwise. The same route processes both; it calls the reports workers with `jobDeadlineMs`
 * and retries failures asynchronously (republished with a backoff delay).
 *
 * `POST /api/report-jobs` (`{"kind":"sales","runInMs":60000}`) is a second route that publishes
 * the job, or, with `runInMs`, schedules a dispatcher event (`addEvent` with the named handler
 * `report-job`) that publishes it later; with Redis that event is durable too and survives a
 * gateway restart. `GET /api/report-jobs/:id` reads the state kept here.
 */
export function createReportJobs(options: ReportJobsOptions): ReportJobs {
  const { dispatcher, reports, config, events } = options;
  const jobs = new Map<string, ReportJobState>();
  const remember = (state: ReportJobState) => {
    jobs.set(state.id, state);
    if (jobs.size > MAX_JOBS) jobs.delete(jobs.keys().next().value!);
  };
  const stateOf = (job: ReportJob): ReportJobState => {
    let state = jobs.get(job.id);
    if (!state) {
      state = { id: job.id, kind: job.kind, state: 'queued', submittedAt: Date.now(), attempts: 0 };
      remember(state);
    }
    return state;
  };

  const queueName = `${options.prefix}-reports`;
  let publish: (job: ReportJob) => Promise<void>;
  let queue: Entrypoint<unknown>;
  let shared: ((id: string) => Promise<ReportJobState | undefined>) | undefined;
  if (options.redisUrl) {
    const bull = bullmqEntrypoint<ReportJob>({
      queue: queueName,
      connection: options.redisUrl,
      concurrency: 8,
      commandTimeoutMs: REDIS_DEADLINE_MS,
    });
    publish = async job => {
      await bull.publish(job, { jobId: job.id });
    };
    queue = bull as Entrypoint<unknown>;
    shared = sharedJobState(bull, options.eventStore);
  } else {
    const memory = memoryQueue<unknown>({ name: queueName, maxLength: 10_000 });
    publish = async job => {
      memory.publish(job);
    };
    queue = memory;
  }

  const processJobs = route({
    entrypoint: queue,
    translators: [schema(reportRequest, 'reportJob')],
    metricLabel: 'report_jobs',
    concurrency: 8,
    backoff: asyncBackoff({
      maxRetries: config.jobRetries,
      delay: exponentialBackoff({ initialMs: 500, maxMs: 10_000 }),
    }),
    target: async (request: ReportRequest, ctx): Promise<Report> => {
      const job = request as ReportJob;
      const state = stateOf(job);
      state.state = 'running';
      state.attempts = ctx.attempt + 1;
      return reports.generate(
        {
          kind: job.kind,
          ...(job.rows ? { rows: job.rows } : {}),
          ...(job.delayMs !== undefined ? { delayMs: job.delayMs } : {}),
        },
        // a queued job waits for a reports worker (starting, restarting) up to its deadline
        // instead of spending its retries on NO_ENDPOINTS
        { timeoutMs: config.jobDeadlineMs, signal: ctx.signal, waitForReady: true },
      );
    },
    callbacks: {
      onSuccess: ({ input, result }) => {
        const state = stateOf(input as ReportJob);
        state.state = 'done';
        state.finishedAt = Date.now();
        state.result = { total: result.total, rows: result.rows.length, worker: result.worker };
        events.add(
          'jobs',
          'good',
          `report job ${state.id.slice(0, 8)} (${state.kind}) done by worker ${result.worker.instance}`,
        );
      },
      onFailure: ({ input, error, attempts }) => {
        if (!input) return;
        const state = stateOf(input as ReportJob);
        state.state = 'failed';
        state.finishedAt = Date.now();
        state.attempts = attempts;
        state.error = {
          code: errorCode(error) ?? 'ERROR',
          message: error instanceof Error ? error.message : String(error),
        };
        events.add(
          'jobs',
          'error',
          `report job ${state.id.slice(0, 8)} failed after ${attempts} attempt(s): ${state.error.code}`,
        );
      },
    },
  });

  dispatcher.registerEventHandler(EVENT_HANDLER, async payload => {
    const job = payload as ReportJob;
    const known = jobs.get(job.id);
    if (known) known.state = 'queued'; // (a job of another replica is read from Redis)
    await publishAgain.execute(() => publish(job));
    events.add('jobs', 'info', `scheduled report job ${job.id.slice(0, 8)} published`);
  });

  const submitEntrypoint = httpEntrypoint({
    path: '/api/report-jobs',
    method: 'POST',
    maxBodyBytes: 16_384,
    exposeErrors: true,
    status: outcome => (outcome.kind === 'success' ? 202 : undefined),
  }) as HttpEntrypoint<unknown>;
  const submit = route({
    entrypoint: submitEntrypoint,
    translators: [json(), schema(jobRequest, 'reportJobRequest')],
    metricLabel: 'report_jobs_submit',
    target: async (request: ReportJobRequest) => {
      const { runInMs, ...rest } = request;
      const submittedAt = Date.now();
      const runAt = runInMs && runInMs > 0 ? submittedAt + runInMs : undefined;
      const job: ReportJob = {
        ...rest,
        id: randomUUID(),
        submittedAt,
        ...(runAt ? { runAt } : {}),
      };
      const state: ReportJobState = {
        id: job.id,
        kind: job.kind,
        state: 'queued',
        submittedAt,
        attempts: 0,
      };
      remember(state);
      let accepted: ReportJobState['state'] = 'queued';
      try {
        if (runAt) {
          accepted = 'scheduled';
          state.state = 'scheduled';
          state.runAt = runAt;
          await dispatcher.addEvent(
            { handler: EVENT_HANDLER, payload: job },
            state.runAt,
            EVENT_HANDLER,
            job.id,
          );
        } else {
          await publish(job);
        }
      } catch (error) {
        jobs.delete(job.id);
        const retryAfterMs = (error as { retryAfterMs?: unknown } | null)?.retryAfterMs;
        throw new GatewayError(
          'QUEUE_UNAVAILABLE',
          503,
          `the job could not be queued: ${(error as Error)?.message ?? String(error)}`,
          { cause: error, retryAfterMs: typeof retryAfterMs === 'number' ? retryAfterMs : 1_000 },
        );
      }
      return {
        id: job.id,
        state: accepted,
        ...(state.runAt ? { runAt: new Date(state.runAt).toISOString() } : {}),
        status: `/api/report-jobs/${job.id}`,
      };
    },
  });

  return {
    routes: [processJobs, submit],
    submitEntrypoint,
    mode: options.redisUrl ? 'bullmq' : 'memory',
    get: async id => {
      if (!shared) return jobs.get(id);
      try {
        return await shared(id);
      } catch (error) {
        throw new GatewayError(
          'QUEUE_UNAVAILABLE',
          503,
          `the status of job ${id} cannot be read: ${(error as Error)?.message ?? String(error)}`,
          { cause: error, retryAfterMs: 1_000 },
        );
      }
    },
    refresh: async () => {
      if (!shared) return;
      const open = [...jobs.values()].filter(j => j.state !== 'done' && j.state !== 'failed');
      for (const local of open.slice(-8)) {
        const current = await shared(local.id).catch(() => undefined);
        if (current) Object.assign(local, current);
      }
    },
    snapshot: () => {
      const counts: Record<string, number> = {
        scheduled: 0,
        queued: 0,
        running: 0,
        done: 0,
        failed: 0,
      };
      for (const job of jobs.values()) counts[job.state] = (counts[job.state] ?? 0) + 1;
      return { counts, latest: [...jobs.values()].slice(-8).reverse() };
    },
  };
}

/** `addEvent`'s key of a scheduled job: service `report-job`, event id the job id. */
function eventKey(id: string): string {
  return `${EVENT_HANDLER}\u0000${id}`;
}

const BULL_STATES: Record<string, ReportJobState['state']> = {
  waiting: 'queued',
  prioritized: 'queued',
  'waiting-children': 'queued',
  delayed: 'queued', // an asynchronous retry waiting out its backoff
  active: 'running',
  completed: 'done',
  failed: 'failed',
};

/** A job's state from BullMQ's record of it, the same from every replica. */
function fromBull(info: BullmqJobInfo<ReportJob>): ReportJobState {
  const state = BULL_STATES[info.state] ?? 'queued';
  const job = info.message;
  const ran = state === 'running' || state === 'done' || state === 'failed';
  const out: ReportJobState = {
    id: info.id,
    kind: job.kind,
    state,
    submittedAt: job.submittedAt ?? info.createdAt,
    attempts: info.deadLetter?.attempts ?? info.retries + (ran ? 1 : 0),
    ...(job.runAt ? { runAt: job.runAt } : {}),
    ...(info.finishedAt && (state === 'done' || state === 'failed')
      ? { finishedAt: info.finishedAt }
      : {}),
  };
  const report = info.result as Report | undefined;
  if (state === 'done' && report && Array.isArray(report.rows))
    out.result = { total: report.total, rows: report.rows.length, worker: report.worker };
  if (state === 'failed') {
    const error = info.deadLetter?.error as { code?: unknown; message?: unknown } | undefined;
    out.error = {
      code: typeof error?.code === 'string' ? error.code : 'JOB_FAILED',
      message:
        typeof error?.message === 'string' ? error.message : (info.failedReason ?? 'job failed'),
    };
  }
  return out;
}

/**
 * Reads a job's state from Redis: BullMQ's job, or (a scheduled job not published yet) its
 * dispatcher event in the shared event store. The event is completed only after the job was
 * added, so one of the two always has it.
 */
function sharedJobState(
  bull: BullmqEntrypoint<ReportJob>,
  eventStore: EventStore | undefined,
): (id: string) => Promise<ReportJobState | undefined> {
  return async id => {
    const info = await bull.job(id);
    if (info) return fromBull(info);
    const event = await eventStore?.get?.(eventKey(id));
    if (!event) return undefined;
    const job = event.payload as ReportJob;
    return {
      id,
      kind: job.kind,
      // a running event is publishing the job right now
      state: event.state === 'pending' ? 'scheduled' : 'queued',
      submittedAt: job.submittedAt ?? event.eta,
      runAt: job.runAt ?? event.eta,
      attempts: 0,
    };
  };
}

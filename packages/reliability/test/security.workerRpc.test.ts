/**
 * Security, worker-rpc: method names that walk the prototype chain and oversized frames, sent over
 * real ZeroMQ sockets to a real reports worker of the gateway as deployed (a dispatcher instance,
 * `tcp://127.0.0.1:<port>`). Every one is refused with the code the worker-rpc README documents
 * (`NOT_FOUND`, `FRAME_TOO_LARGE`), nothing runs, and the worker stays up.
 */
import { randomBytes } from 'node:crypto';
import {
  Kind,
  createWorkerConnection,
  decodeHeader,
  encodeHeader,
  type WorkerConnection,
  type WorkerStatus,
} from '@x/worker-rpc';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Dealer } from 'zeromq';
import { recordFigure } from '../src/figures.js';
import { startGateway, type RunningGateway } from '../src/gateway.js';

const MIB = 1024 * 1024;
/** The worker's default `maxBodyBytes`. */
const MAX_BODY = 16 * MIB;

let gateway: RunningGateway;
let address: string;
let workerPid: number;
let conn: WorkerConnection;
const tally = { names: 0, notFound: 0, frames: 0, framesRefused: 0 };

// The gateway gives its report workers its admin token: $status needs it.
const status = () =>
  conn.invoke('$status', undefined, {
    meta: { authorization: gateway.token },
  }) as Promise<WorkerStatus>;
const generated = async () =>
  ((await conn.invoke('reports.stats')) as { generated: number; pid: number }).generated;

/** The rejection of `call`, or a failure if it resolved. */
async function rejection(call: Promise<unknown>): Promise<{ code?: string; remote?: boolean }> {
  const outcome = await call.then(
    value => ({ resolved: value }),
    (error: unknown) => ({ error }),
  );
  if ('resolved' in outcome)
    throw new Error(`expected a rejection, got ${JSON.stringify(outcome.resolved)}`);
  return outcome.error as { code?: string; remote?: boolean };
}

/** A raw DEALER on the worker: frames exactly as given, replies read with a timeout. */
async function rawDealer<T>(use: (dealer: Dealer) => Promise<T>): Promise<T> {
  const dealer = new Dealer({
    linger: 0,
    receiveTimeout: 1_500,
    maxMessageSize: -1,
    sendTimeout: 5_000,
  });
  dealer.connect(address);
  try {
    return await use(dealer);
  } finally {
    dealer.close();
  }
}

beforeAll(async () => {
  gateway = await startGateway();
  const worker = (await gateway.instances('reports', 'v1')).find(i => i.port && i.pid);
  address = `tcp://127.0.0.1:${worker!.port}`;
  workerPid = worker!.pid!;
  conn = createWorkerConnection({
    addresses: address,
    timeoutMs: 5_000,
    maxBodyBytes: 4 * MAX_BODY,
  });
});

afterAll(async () => {
  recordFigure({
    section: 'security',
    name: 'worker-rpc: prototype-walking method names answered NOT_FOUND / tried',
    value: `${tally.notFound} / ${tally.names}`,
    target: 'all, none executed',
  });
  recordFigure({
    section: 'security',
    name: 'worker-rpc: oversized frames refused / tried (worker stays up)',
    value: `${tally.framesRefused} / ${tally.frames}`,
    target: 'all',
  });
  await conn?.close();
  await gateway?.close();
});

describe('worker-rpc method names that walk the prototype chain', () => {
  let completedPerStatusCall = 0;

  it('the control: a real method answers, from the worker the dashboard shows', async () => {
    const stats = (await conn.invoke('reports.stats')) as { pid: number };
    expect(stats.pid).toBe(workerPid);
    const first = await status();
    const second = await status();
    // reading the status is itself a completed call
    completedPerStatusCall = second.completed - first.completed;
    expect(completedPerStatusCall).toBe(1);
  });

  it.each([
    '__proto__',
    'constructor',
    'prototype',
    'toString',
    'valueOf',
    'hasOwnProperty',
    'isPrototypeOf',
    'propertyIsEnumerable',
    'toLocaleString',
    '__defineGetter__',
    '__lookupGetter__',
    'constructor.prototype',
    'constructor.constructor',
    '__proto__.constructor',
    '__proto__.toString',
    'reports.constructor',
    'reports.__proto__',
    'reports.__proto__.toString',
    'reports.hasOwnProperty',
    'reports.generate.call',
    'reports.generate.apply',
    'reports.generate.bind',
    'reports.generate.constructor',
    'reports.generate.toString',
    'reports.stats.length',
    'reports',
    'reports.',
    '.reports.generate',
    'reports..generate',
    '$constructor',
    '$__proto__',
    '$toString',
    `${'reports.'.repeat(40)}generate`,
    `reports.${'g'.repeat(600)}`,
  ])('%s: NOT_FOUND, nothing executed', async method => {
    const before = await status();
    const error = await rejection(conn.invoke(method, { kind: 'sales', rows: 1 }));
    const after = await status();
    tally.names++;
    if (error.code === 'NOT_FOUND' && after.completed - before.completed === completedPerStatusCall)
      tally.notFound++;
    expect(error).toMatchObject({ code: 'NOT_FOUND', remote: true });
    expect(after.completed - before.completed).toBe(completedPerStatusCall);
    expect(after.failed).toBe(before.failed);
    expect(after.rejected - before.rejected).toBe(1);
  });
});

describe('worker-rpc admin methods on the report workers', () => {
  it.each([
    ['no token', undefined],
    ['a wrong token', 'wrong-token-0123456789abcdef'],
  ])('$status and $drain with %s: NOT_FOUND, the worker keeps serving', async (_, token) => {
    const meta = token === undefined ? {} : { meta: { authorization: token } };
    for (const method of ['$status', '$drain']) {
      const error = await rejection(conn.invoke(method, { timeoutMs: 1 }, meta));
      expect(error).toMatchObject({ code: 'NOT_FOUND', remote: true });
    }
    const stats = (await conn.invoke('reports.stats')) as { pid: number };
    expect(stats.pid).toBe(workerPid);
    expect((await status()).state).toBe('running');
  });
});

describe('oversized worker-rpc frames', () => {
  it(`a body over maxBodyBytes (16 MiB): FRAME_TOO_LARGE, the handler never runs`, async () => {
    const runs = await generated();
    const before = await status();
    const error = await rejection(
      conn.invoke('reports.generate', { kind: 'sales', pad: 'x'.repeat(MAX_BODY + 64 * 1024) }),
    );
    const after = await status();
    tally.frames++;
    if (error.code === 'FRAME_TOO_LARGE') tally.framesRefused++;
    expect(error).toMatchObject({ code: 'FRAME_TOO_LARGE', remote: true });
    expect(after.badFrames - before.badFrames).toBe(1);
    expect(await generated()).toBe(runs);
  });

  it('a header over 64 KiB: an ERR reply FRAME_TOO_LARGE for its request id', async () => {
    const id = randomBytes(16);
    const header = Buffer.concat([
      encodeHeader({ kind: Kind.REQ, id, codec: 'json', method: 'reports.stats', budgetMs: 2_000 }),
      Buffer.alloc(70_000, 0x61),
    ]);
    const [delimiter, replyHeader, replyBody] = await rawDealer(async dealer => {
      await dealer.send([Buffer.alloc(0), header, Buffer.from('{}')]);
      return dealer.receive();
    });
    const decoded = decodeHeader(replyHeader!);
    const body = JSON.parse(replyBody!.toString()) as { code: string };
    tally.frames++;
    if (decoded.kind === Kind.ERR && body.code === 'FRAME_TOO_LARGE') tally.framesRefused++;
    expect(delimiter!.byteLength).toBe(0);
    expect(decoded.kind).toBe(Kind.ERR);
    expect(Buffer.from(decoded.id).equals(id)).toBe(true);
    expect(body.code).toBe('FRAME_TOO_LARGE');
  });

  it('a message over the socket limit (18 MiB): dropped by libzmq, the worker keeps serving', async () => {
    const runs = await generated();
    const before = await status();
    const answered = await rawDealer(async dealer => {
      const id = randomBytes(16);
      await dealer.send([
        Buffer.alloc(0),
        encodeHeader({ kind: Kind.REQ, id, codec: 'json', method: 'reports.generate' }),
        Buffer.from(JSON.stringify({ kind: 'sales', pad: 'x'.repeat(18 * MIB) })),
      ]);
      return dealer.receive().then(
        () => true,
        () => false, // receiveTimeout: no reply, the peer was disconnected
      );
    });
    tally.frames++;
    if (!answered) tally.framesRefused++;
    expect(answered).toBe(false);
    expect(await generated()).toBe(runs);
    // the worker never read it: no bad frame counted, nothing rejected
    const after = await status();
    expect(after.badFrames).toBe(before.badFrames);
    expect(after.rejected).toBe(before.rejected);
  });

  it('the worker is the same process, still up and still serving the gateway', async () => {
    const stats = (await conn.invoke('reports.stats')) as { pid: number };
    expect(stats.pid).toBe(workerPid);
    const instance = (await gateway.instances('reports', 'v1')).find(i => i.pid === workerPid);
    expect(instance?.state).toBe('ready');
    for (let i = 0; i < 4; i++) {
      const res = await fetch(`${gateway.url}api/reports`, {
        method: 'POST',
        body: JSON.stringify({ kind: 'sales', rows: 2 }),
      });
      expect(res.status).toBe(200);
      await res.text();
    }
  });
});

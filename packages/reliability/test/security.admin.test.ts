/**
 * Security, admin API: calls without the token, with a wrong one, or through confusing paths are
 * refused (401 `UNAUTHORIZED` / 403 `FORBIDDEN`, see the dispatcher README) on the gateway as
 * deployed and on the front door behind it, and none of them takes effect: no instance is
 * stopped, no version is stopped.
 *
 * The token comparison itself is constant-time by construction (reviewed, not timed: a network
 * timing test on a shared 2-core machine could not fail): `FrontDoor.serveAdmin` compares the
 * SHA-256 digests of the given and the configured token with `crypto.timingSafeEqual`, so neither
 * the length nor a common prefix of a guess changes the work done.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recordFigure } from '../src/figures.js';
import { startGateway, type GatewayInstance, type RunningGateway } from '../src/gateway.js';
import { rawExchange, type RawExchange } from '../src/rawHttp.js';

let gateway: RunningGateway;
let before: GatewayInstance[];
const TARGETS = ['gateway', 'front door'] as const;
type Target = (typeof TARGETS)[number];
const urlOf = (target: Target) => (target === 'gateway' ? gateway.url : gateway.frontDoorUrl);
let tried = 0;
let refused = 0;

/** The actions an attacker wants: each would visibly change the running instances. */
const ACTIONS: Array<[method: string, path: string, body: string]> = [
  ['GET', '/_x/admin/modules', ''],
  ['PUT', '/_x/admin/modules/catalog/versions/v1/instances', '{"instances":0}'],
  ['POST', '/_x/admin/modules/orders/versions/v1/stop', ''],
  ['PUT', '/_x/admin/modules/reports/versions/v1/instances', '{"instances":0}'],
];

function request(method: string, path: string, body: string, headers: string[] = []): string {
  return [
    `${method} ${path} HTTP/1.1`,
    'Host: localhost',
    'Content-Type: application/json',
    `Content-Length: ${Buffer.byteLength(body)}`,
    'Connection: close',
    ...headers,
    '',
    body,
  ].join('\r\n');
}

function bodyOf(exchange: RawExchange): string {
  return exchange.text.slice(exchange.text.indexOf('\r\n\r\n') + 4);
}

/** Instances (state and pid) as the dashboard shows them, without the load counters. */
async function instances(): Promise<GatewayInstance[]> {
  return (await gateway.instances()).map(({ module, version, id, state, pid, port }) => ({
    module,
    version,
    id,
    state,
    pid,
    port,
  }));
}

beforeAll(async () => {
  // 40+ wrong tokens from one address: the lockout (security.adminLockout) is raised out of the way
  gateway = await startGateway({ config: { admin: { maxFailures: 1_000 } } });
  before = await instances();
});

afterAll(async () => {
  recordFigure({
    section: 'security',
    name: 'admin API without / with a wrong token, or via path tricks: calls refused / tried',
    value: `${refused} / ${tried}`,
    target: 'all, none taking effect',
  });
  await gateway?.close();
});

describe('admin API', () => {
  it('answers with the right token (the control: these requests do reach the admin API)', async () => {
    for (const target of TARGETS) {
      const answer = await rawExchange(urlOf(target), [
        request('GET', '/_x/admin/modules', '', [`Authorization: Bearer ${gateway.token}`]),
      ]);
      expect(answer.statuses).toEqual([200]);
      const names = (JSON.parse(bodyOf(answer)) as { modules: Array<{ name: string }> }).modules;
      expect(names.map(m => m.name)).toEqual(['web', 'catalog', 'orders', 'reports']);
    }
    expect(before.filter(i => i.state === 'ready').length).toBe(before.length);
    expect(before.filter(i => i.module === 'catalog')).toHaveLength(3);
  });

  const flip = (token: string) => token.slice(0, -1) + (token.endsWith('A') ? 'B' : 'A');
  /** [name, headers, expected status]. */
  const ATTEMPTS: Array<[string, () => string[], 401 | 403]> = [
    ['no credentials', () => [], 401],
    ['an empty bearer token', () => ['Authorization: Bearer '], 401],
    [
      'a wrong token of the same length',
      () => [`Authorization: Bearer ${flip(gateway.token)}`],
      403,
    ],
    [
      'the token without its last character',
      () => [`Authorization: Bearer ${gateway.token.slice(0, -1)}`],
      403,
    ],
    ['the token with one more character', () => [`Authorization: Bearer ${gateway.token}x`], 403],
    ['the token after two spaces', () => [`Authorization: Bearer  ${gateway.token}`], 403],
    ['a wrong X-Admin-Token', () => ['X-Admin-Token: not-the-admin-token-0000'], 403],
    [
      'Basic authentication with the token as password',
      () => [`Authorization: Basic ${Buffer.from(`admin:${gateway.token}`).toString('base64')}`],
      401,
    ],
    ['the token in a cookie', () => [`Cookie: token=${gateway.token}`], 401],
  ];

  describe.each(TARGETS)('%s', target => {
    it.each(ATTEMPTS)('%s: refused, nothing changes', async (_name, headers, status) => {
      const code = status === 401 ? 'UNAUTHORIZED' : 'FORBIDDEN';
      for (const [method, path, body] of ACTIONS) {
        const answer = await rawExchange(urlOf(target), [request(method, path, body, headers())]);
        tried++;
        const ok = answer.statuses.join() === String(status);
        if (ok) refused++;
        expect(answer.statuses, `${method} ${path}`).toEqual([status]);
        expect(JSON.parse(bodyOf(answer))).toMatchObject({ error: { code } });
        if (status === 401) expect(answer.text).toMatch(/\r\nwww-authenticate: Bearer\r\n/i);
      }
      expect(await instances()).toEqual(before);
    });

    it.each([
      ['the token in the query string', (p: string) => `${p}?token=${gateway.token}`],
      ['a dot segment into the admin path', (p: string) => `/api/..${p}`],
      [
        'a dot segment inside the admin path',
        (p: string) => p.replace('/_x/admin/', '/_x/admin/../admin/'),
      ],
      ['a doubled leading slash', (p: string) => `/${p}`],
      ['an encoded slash', (p: string) => p.replace('/_x/admin/', '/_x/admin%2f')],
      ['another case', (p: string) => p.replace('/_x/admin/', '/_X/Admin/')],
    ])('%s: no admin action without the token', async (_name, rewrite) => {
      for (const [method, path, body] of ACTIONS) {
        const answer = await rawExchange(urlOf(target), [request(method, rewrite(path), body)]);
        const status = answer.statuses[0] ?? 0;
        tried++;
        if (status >= 400 && status < 500) refused++;
        expect(status, `${method} ${rewrite(path)}`).toBeGreaterThanOrEqual(400);
        expect(status).toBeLessThan(500);
        expect(bodyOf(answer)).not.toMatch(/"modules":\[|"stopped":true|"instances":0/);
      }
      expect(await instances()).toEqual(before);
    });
  });
});

describe('the check above can fail', () => {
  it('with the right token the same PUT does take effect (and the comparison sees it)', async () => {
    const [, path, body] = ACTIONS[1]!;
    const answer = await rawExchange(gateway.url, [
      request('PUT', path, body.replace('0', '2'), [`Authorization: Bearer ${gateway.token}`]),
    ]);
    expect(answer.statuses).toEqual([200]);
    const after = await instances();
    expect(after).not.toEqual(before);
    expect(after.filter(i => i.module === 'catalog')).toHaveLength(2);
  });
});

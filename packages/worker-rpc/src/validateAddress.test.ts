import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { isWorkerRpcError } from './errors.js';
import { validateAddress, type AddressUse } from './validateAddress.js';

function refusal(address: unknown, use: AddressUse, field?: string) {
  try {
    validateAddress(address, use, field);
  } catch (error) {
    return error as Error & { code?: string };
  }
  return undefined;
}

describe('validateAddress', () => {
  test('keeps every form that works today', () => {
    for (const a of [
      'tcp://127.0.0.1:55555',
      'tcp://w1:55555',
      'tcp://a:1',
      'tcp://localhost:65535',
      'tcp://[::1]:5555',
      'TCP://host.example.com:80',
      'ipc:///tmp/workerservice.sock',
      'inproc://workers',
      ' tcp://127.0.0.1:9 ',
    ])
      expect(validateAddress(a, 'zmq-connect')).toBe(a.trim());
    for (const a of [
      'tcp://*:55555',
      'tcp://0.0.0.0:55555',
      'tcp://127.0.0.1:0',
      'tcp://127.0.0.1:*',
      'ipc:///tmp/workerservice.sock',
    ])
      expect(validateAddress(a, 'zmq-bind')).toBe(a);
    for (const a of [
      'http://127.0.0.1:40123/',
      'http://a:1',
      'https://instance',
      'http://[::1]:8080/base/path',
    ])
      expect(validateAddress(a, 'http-connect')).toBe(a);
  });

  test('refuses the malformed addresses of issue 12 with INVALID_ARGUMENT naming them', () => {
    for (const a of [
      'tcp://127.0.0.1',
      'foo://x:1',
      'tcp://127.0.0.1:notaport',
      'localhost:5555',
      'tcp://127.0.0.1:0',
      'tcp://127.0.0.1:65536',
      'tcp://*:5555',
      'tcp://:5555',
      'ipc://',
      'http://127.0.0.1:1',
      '',
    ]) {
      const error = refusal(a, 'zmq-connect');
      expect(error?.code, a).toBe('INVALID_ARGUMENT');
      expect(error!.message).toBe(
        `address: expected tcp://host:port (port 1-65535), ipc://path or inproc://name, received ${JSON.stringify(a)}`,
      );
    }
    for (const a of ['tcp://127.0.0.1', 'tcp://127.0.0.1:x', 'localhost:5555'])
      expect(refusal(a, 'zmq-bind', 'bind')?.message).toMatch(
        /^bind: expected tcp:\/\/interface:port/,
      );
    for (const a of [
      'foo://x:1',
      'tcp://127.0.0.1:5555',
      'http://',
      'http://x:99999',
      'http://x:0',
      'http://a b',
      'localhost:5555',
    ])
      expect(refusal(a, 'http-connect')?.message, a).toMatch(
        /^address: expected http\(s\):\/\/host\[:port\]\[\/path\] \(port 1-65535\), received /,
      );
    expect(refusal(42, 'zmq-connect')?.message).toMatch(/received 42$/);
    expect(refusal(undefined, 'zmq-connect')?.message).toMatch(/received undefined$/);
  });

  test('property: any string is either refused with INVALID_ARGUMENT or has the documented shape', () => {
    const uses: AddressUse[] = ['zmq-connect', 'zmq-bind', 'http-connect'];
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string(),
          fc.webUrl(),
          fc
            .tuple(
              fc.constantFrom('tcp://', 'ipc://', 'inproc://', 'http://', 'foo://', ''),
              fc.oneof(fc.domain(), fc.ipV4(), fc.constantFrom('*', '', '[::1]')),
              fc.constantFrom('', ':'),
              fc.oneof(
                fc.integer({ min: -5, max: 70_000 }).map(String),
                fc.string(),
                fc.constant('*'),
              ),
            )
            .map(parts => parts.join('')),
        ),
        fc.constantFrom(...uses),
        (address, use) => {
          let accepted: string;
          try {
            accepted = validateAddress(address, use);
          } catch (error) {
            expect(isWorkerRpcError(error)).toBe(true);
            expect((error as { code: string }).code).toBe('INVALID_ARGUMENT');
            expect((error as Error).message.startsWith('address: expected ')).toBe(true);
            return;
          }
          if (use === 'http-connect') {
            const url = new URL(accepted);
            expect(['http:', 'https:']).toContain(url.protocol);
            expect(url.port).not.toBe('0');
          } else {
            const m = /^(tcp|ipc|inproc):\/\/(.+)$/i.exec(accepted);
            expect(m).not.toBeNull();
            if (m![1]!.toLowerCase() === 'tcp') {
              const port = accepted.slice(accepted.lastIndexOf(':') + 1);
              if (port !== '*' || use === 'zmq-connect') {
                expect(Number.isInteger(Number(port))).toBe(true);
                expect(Number(port)).toBeLessThanOrEqual(65_535);
                expect(Number(port)).toBeGreaterThanOrEqual(use === 'zmq-connect' ? 1 : 0);
              }
            }
          }
        },
      ),
      { numRuns: 500 },
    );
  });
});

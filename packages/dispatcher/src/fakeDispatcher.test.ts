import { describe, expect, it } from 'vitest';
import { ManualClock } from '@x/resilience';
import { createFakeDispatcher } from './fakeDispatcher.js';
import { responseText } from './responseTuple.js';

describe('createFakeDispatcher', () => {
  const modules = {
    default: { versions: ['v1', 'v2'], defaultVersion: 'v2', hostnames: { v1: 'v1.default.test' } },
    api: { versions: ['a'] },
  };

  it('answers the Modules API from plain data', () => {
    const fake = createFakeDispatcher({ modules });
    expect(fake.getModuleNames()).toEqual(['default', 'api']);
    expect(fake.getVersions('default')).toEqual(['v1', 'v2']);
    expect(fake.getDefaultVersion('default')).toBe('v2');
    expect(fake.getDefaultVersion('api')).toBe('a');
    expect(fake.getHostname('default', 'v1')).toBe('v1.default.test');
    expect(fake.getHostname('api', 'a')).toBe('a.api.localhost');
    expect(fake.getHostname('api')).toBe('a.api.localhost');
    expect(() => fake.getHostname('api', 'a', '0')).toThrow(
      expect.objectContaining({ code: 'INVALID_INSTANCE_ID' }),
    );
    expect(() => fake.getVersions('ghost')).toThrow(
      expect.objectContaining({ code: 'MODULE_DOES_NOT_EXIST' }),
    );
    expect(() => fake.getHostname('api', 'zz')).toThrow(
      expect.objectContaining({ code: 'VERSION_DOES_NOT_EXIST' }),
    );
    expect(fake.getInstances('api', 'a')).toEqual([]);
  });

  it('refuses instance control like App Engine’s fake', async () => {
    const fake = createFakeDispatcher({ modules });
    expect(() => fake.getNumInstances('api', 'a')).toThrow(
      expect.objectContaining({ code: 'NOT_SUPPORTED_WITH_AUTO_SCALING' }),
    );
    await expect(fake.setNumInstances('api', 'a', 2)).rejects.toMatchObject({
      code: 'NOT_SUPPORTED_WITH_AUTO_SCALING',
    });
    await expect(fake.startVersion('api', 'a')).rejects.toMatchObject({
      code: 'NOT_SUPPORTED_WITH_AUTO_SCALING',
    });
    await expect(fake.stopVersion('api', 'a')).rejects.toMatchObject({
      code: 'NOT_SUPPORTED_WITH_AUTO_SCALING',
    });
    await expect(fake.stopVersion('ghost', 'a')).rejects.toMatchObject({
      code: 'MODULE_DOES_NOT_EXIST',
    });
    await expect(fake.sendBackgroundRequest('api', 'a', '0', 'id')).rejects.toMatchObject({
      code: 'NOT_SUPPORTED_WITH_AUTO_SCALING',
    });
    await expect(fake.listen()).rejects.toMatchObject({ code: 'INVALID_CONFIG' });
  });

  it('answers requests with 501 by default, or your handler, and records them', async () => {
    const plain = createFakeDispatcher({ modules });
    const response = await plain.addRequest({ url: '/x' });
    expect([response.status, response.reason]).toEqual([501, 'Not Implemented']);
    const fake = createFakeDispatcher({
      modules,
      handler: request => ({
        status: 200,
        reason: 'OK',
        headers: [],
        body: Buffer.from(`hi ${request.url}`),
      }),
    });
    expect(responseText(await fake.addRequest({ url: '/a', module: 'api' }))).toBe('hi /a');
    const async = fake.addAsyncRequest({ url: '/b' });
    expect(responseText(await async.settled)).toBe('hi /b');
    expect(fake.requests.map(r => r.url)).toEqual(['/a', '/b']);
    await expect(fake.addRequest({ url: '/', module: 'ghost' })).rejects.toMatchObject({
      code: 'MODULE_DOES_NOT_EXIST',
    });
    await expect(fake.addRequest({ url: '/', instance: '1' })).rejects.toMatchObject({
      code: 'NOT_SUPPORTED_WITH_AUTO_SCALING',
    });
    expect(fake.explain({ url: '/', module: 'api' })).toMatchObject({
      module: 'api',
      version: 'a',
      moduleSource: 'explicit',
    });
    await fake.close();
    await expect(fake.addRequest({ url: '/' })).rejects.toMatchObject({
      code: 'DISPATCHER_CLOSED',
    });
  });

  it('runs events on the injected clock', async () => {
    const clock = new ManualClock(0);
    const fake = createFakeDispatcher({ clock });
    const fired: string[] = [];
    await fake.addEvent(() => fired.push('a'), 100, 'svc', 'a');
    expect(await fake.updateEvent(50, 'svc', 'a')).toBe(true);
    expect(await fake.updateEvent(50, 'svc', 'b')).toBe(false);
    await clock.advance(50);
    expect(fired).toEqual(['a']);
    expect(await fake.cancelEvent('svc', 'a')).toBe(false);
    await fake.close();
  });

  it('validates its data', () => {
    expect(() => createFakeDispatcher({ modules: { a: { versions: [] } } })).toThrow(
      /at least one version/,
    );
    expect(() =>
      createFakeDispatcher({ modules: { a: { versions: ['v1'], defaultVersion: 'v2' } } }),
    ).toThrow(/not listed/);
  });
});

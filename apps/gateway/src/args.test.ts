import { describe, expect, it } from 'vitest';
import { listenSettings, parseCli } from './args.js';

describe('listen settings', () => {
  it('takes PORT and HOST from the environment when no flag is given', () => {
    expect(listenSettings(parseCli([]), { PORT: '9191', HOST: '0.0.0.0' })).toEqual({
      port: 9191,
      host: '0.0.0.0',
    });
  });

  it('lets --port and --host win over PORT and HOST', () => {
    expect(
      listenSettings(parseCli(['--port', '7070', '--host', '127.0.0.1']), {
        PORT: '9191',
        HOST: '0.0.0.0',
      }),
    ).toEqual({ port: 7070, host: '127.0.0.1' });
  });

  it('leaves the configuration file in charge without flags or environment', () => {
    expect(listenSettings(parseCli([]), {})).toEqual({});
    expect(listenSettings(parseCli([]), { PORT: '', HOST: ' ' })).toEqual({});
  });

  it('refuses a malformed PORT by name', () => {
    expect(() => listenSettings(parseCli([]), { PORT: 'http' })).toThrow(/^PORT: expected/);
    expect(() => listenSettings(parseCli([]), { PORT: '70000' })).toThrow(/^PORT: expected/);
  });
});

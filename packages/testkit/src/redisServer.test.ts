import { connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { startRedisServer, type RedisServer } from './redisServer.js';

const servers: RedisServer[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
});

/** Sends one inline command and resolves with the first reply line ('' when nothing came in `ms`). */
function command(port: number, line: string, ms = 1_000): Promise<string> {
  return new Promise(resolve => {
    const socket = connect(port, '127.0.0.1');
    let out = '';
    const done = (value: string) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(value);
    };
    const timer = setTimeout(() => done(out), ms);
    socket.on('connect', () => socket.write(`${line}\r\n`));
    socket.on('data', chunk => {
      out += chunk.toString();
      if (out.includes('\r\n')) done(out.split('\r\n')[0]!);
    });
    socket.on('error', (error: NodeJS.ErrnoException) => done(`error ${error.code}`));
  });
}

describe('startRedisServer', () => {
  it('stops (connections refused), starts again on its port with its data, pauses and resumes', async () => {
    const redis = await startRedisServer();
    servers.push(redis);
    expect(redis.url).toBe(`redis://127.0.0.1:${redis.port}`);
    expect(await command(redis.port, 'SET k v')).toBe('+OK');
    await redis.stop();
    expect(redis.pid).toBeUndefined();
    expect(await command(redis.port, 'PING')).toBe('error ECONNREFUSED');
    await redis.start();
    expect(await command(redis.port, 'GET k')).toBe('$1'); // the bulk reply's length line: "v" kept
    redis.pause();
    expect(await command(redis.port, 'PING', 300)).toBe(''); // accepted, never answered
    redis.resume();
    expect(await command(redis.port, 'PING')).toBe('+PONG');
  });
});

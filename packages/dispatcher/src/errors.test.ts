import { describe, expect, it } from 'vitest';
import { XError, isXError } from '@x/resilience';
import {
  BackendError,
  BackgroundThreadLimitReachedError,
  DeadlineExceededError,
  DispatcherClosedError,
  DispatcherError,
  EventLimitReachedError,
  InstanceStartError,
  InvalidConfigError,
  InvalidDispatchRuleError,
  InvalidInstanceIdError,
  InvalidRequestError,
  MissingDependencyError,
  ModuleDoesNotExistError,
  NoCapacityError,
  NotSupportedWithAutoScalingError,
  PayloadTooLargeError,
  VersionAlreadyStartedError,
  VersionAlreadyStoppedError,
  VersionDoesNotExistError,
  VersionStoppedError,
} from './errors.js';

describe('errors', () => {
  const cases: Array<[DispatcherError, string, number, string]> = [
    [new ModuleDoesNotExistError('api'), 'MODULE_DOES_NOT_EXIST', 404, 'ModuleDoesNotExistError'],
    [
      new VersionDoesNotExistError('api', 'v9'),
      'VERSION_DOES_NOT_EXIST',
      404,
      'VersionDoesNotExistError',
    ],
    [
      new InvalidInstanceIdError('api', 'v1', '7'),
      'INVALID_INSTANCE_ID',
      404,
      'InvalidInstanceIdError',
    ],
    [
      new NotSupportedWithAutoScalingError('api', 'v1', 'setNumInstances'),
      'NOT_SUPPORTED_WITH_AUTO_SCALING',
      400,
      'NotSupportedWithAutoScalingError',
    ],
    [
      new BackgroundThreadLimitReachedError('api', 'v1', '0', 2),
      'BACKGROUND_THREAD_LIMIT_REACHED',
      503,
      'BackgroundThreadLimitReachedError',
    ],
    [
      new VersionAlreadyStartedError('api', 'v1'),
      'VERSION_ALREADY_STARTED',
      409,
      'VersionAlreadyStartedError',
    ],
    [
      new VersionAlreadyStoppedError('api', 'v1'),
      'VERSION_ALREADY_STOPPED',
      409,
      'VersionAlreadyStoppedError',
    ],
    [new VersionStoppedError('api', 'v1'), 'VERSION_STOPPED', 503, 'VersionStoppedError'],
    [new NoCapacityError('full', 'requests', 2000), 'NO_CAPACITY', 503, 'NoCapacityError'],
    [new DeadlineExceededError(100), 'DEADLINE_EXCEEDED', 504, 'DeadlineExceededError'],
    [
      new InvalidDispatchRuleError('bad', 2),
      'INVALID_DISPATCH_RULE',
      500,
      'InvalidDispatchRuleError',
    ],
    [new InvalidRequestError('bad'), 'INVALID_REQUEST', 400, 'InvalidRequestError'],
    [new PayloadTooLargeError(10), 'PAYLOAD_TOO_LARGE', 413, 'PayloadTooLargeError'],
    [new BackendError('down'), 'BACKEND_ERROR', 502, 'BackendError'],
    [new InstanceStartError('nope'), 'INSTANCE_START_FAILED', 503, 'InstanceStartError'],
    [new InvalidConfigError('bad'), 'INVALID_CONFIG', 500, 'InvalidConfigError'],
    [new EventLimitReachedError(5), 'EVENT_LIMIT_REACHED', 503, 'EventLimitReachedError'],
    [
      new MissingDependencyError('ioredis', 'x'),
      'MISSING_DEPENDENCY',
      500,
      'MissingDependencyError',
    ],
    [new DispatcherClosedError(), 'DISPATCHER_CLOSED', 503, 'DispatcherClosedError'],
  ];

  it.each(cases)('%s has a stable code, status and name', (error, code, status, name) => {
    expect(error).toBeInstanceOf(DispatcherError);
    expect(error).toBeInstanceOf(XError);
    expect(isXError(error, code)).toBe(true);
    expect(error.code).toBe(code);
    expect(error.status).toBe(status);
    expect(error.name).toBe(name);
    expect(error.message.length).toBeGreaterThan(0);
  });

  it('codes are unique', () => {
    expect(new Set(cases.map(c => c[1])).size).toBe(cases.length);
  });

  it('keeps details and the cause', () => {
    const cause = new Error('root');
    const error = new NoCapacityError('full', 'pending-latency', 1500, { cause });
    expect(error.retryAfterMs).toBe(1500);
    expect(error.dimension).toBe('pending-latency');
    expect(error.cause).toBe(cause);
    expect(new InvalidDispatchRuleError('bad url', 3).message).toBe('dispatch rule 3: bad url');
    expect(new VersionDoesNotExistError('api', 'v9').message).toContain('"v9"');
    expect(new MissingDependencyError('ioredis', 'redisEventStore()').message).toContain(
      'npm install ioredis',
    );
  });
});

import { Tracer } from '../tracing.js';

/** Spans of each `faultTolerant` attempt (channel `x:resilience:attempt`), children of the call's span. */
export const faultTolerantAttemptTracer = new Tracer('@x/resilience', 'x:resilience:attempt');

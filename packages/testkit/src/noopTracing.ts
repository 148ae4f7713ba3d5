/** What {@link noopTracing} gives: a provider to register and unregister around a measurement. */
export interface NoopTracing {
  /** Registers the provider as OpenTelemetry's global one. */
  on(): void;
  /** Unregisters it (nothing traced afterwards). */
  off(): void;
  shutdown(): Promise<void>;
}

/**
 * An OpenTelemetry `BasicTracerProvider` that records every span (always-on sampler) and exports
 * them nowhere: what the benchmarks register to measure the cost of tracing itself, beside the
 * same calls untraced.
 */
export async function noopTracing(): Promise<NoopTracing> {
  const { trace } = await import('@opentelemetry/api');
  const { AlwaysOnSampler, BasicTracerProvider, SimpleSpanProcessor } =
    await import('@opentelemetry/sdk-trace-base');
  const provider = new BasicTracerProvider({
    sampler: new AlwaysOnSampler(),
    spanProcessors: [
      new SimpleSpanProcessor({
        export: (_spans, done) => done({ code: 0 }),
        shutdown: async () => {},
      }),
    ],
  });
  return {
    on: () => void trace.setGlobalTracerProvider(provider),
    off: () => trace.disable(),
    shutdown: () => provider.shutdown(),
  };
}

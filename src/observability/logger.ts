/**
 * The gateway's one structured logger: pino writing JSON lines (`level`, `time`, `msg`, fields) to
 * stdout, at the level LOG_LEVEL names. Yoga logs through it too (`yogaLogger`).
 */
import { format } from 'node:util';
import type { YogaLogger } from 'graphql-yoga';
import { type DestinationStream, type Logger, pino } from 'pino';

export type { Logger };

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** A logger at `level`; `destination` (tests) replaces stdout. */
export function createLogger(level: LogLevel, destination?: DestinationStream): Logger {
  const options = { name: 'latentgate', level };
  return destination ? pino(options, destination) : pino(options);
}

/**
 * Yoga's `logging` option over `logger`: an Error argument becomes pino's `err` (with its stack).
 * `skip` drops the errors the gateway's error edges have already logged, at their own level (Yoga
 * logs every error its mask changed, client errors included, at error level).
 */
export function yogaLogger(logger: Logger, skip: (error: unknown) => boolean = () => false): YogaLogger {
  const yoga = logger.child({ component: 'yoga' });
  const at =
    (level: 'debug' | 'info' | 'warn' | 'error') =>
    (...args: unknown[]) => {
      const [first, ...rest] = args;
      if (first instanceof Error) {
        if (!skip(first)) yoga[level]({ err: first }, rest.length > 0 ? format(...rest) : first.message);
      } else yoga[level](format(...args));
    };
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

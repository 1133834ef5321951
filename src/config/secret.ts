/**
 * A secret setting (a signing key, a token): its value is reachable only through `reveal()`, so
 * printing, logging or serialising the configuration shows `[secret]` instead of it.
 */
import { readFileSync } from 'node:fs';
import { inspect } from 'node:util';

export class Secret {
  readonly #value: string;

  constructor(value: string) {
    this.#value = value;
  }

  reveal(): string {
    return this.#value;
  }

  toString(): string {
    return '[secret]';
  }

  toJSON(): string {
    return '[secret]';
  }

  [inspect.custom](): string {
    return 'Secret([secret])';
  }
}

/**
 * The secret named `NAME` in the environment, or read from the file named by `NAME_FILE` (the way
 * container secrets are mounted; one trailing line break is not part of it); null when neither is
 * set. Problems name the setting, the file and the length allowed, never the value.
 */
export function readSecret(env: NodeJS.ProcessEnv, name: string, minLength: number): Secret | null {
  const direct = env[name];
  const file = env[`${name}_FILE`];
  if (direct && file) throw new Error(`set ${name} or ${name}_FILE, not both`);
  let value: string;
  if (direct) value = direct;
  else if (file) {
    try {
      value = readFileSync(file, 'utf8').replace(/\r?\n$/, '');
    } catch (error) {
      throw new Error(`${name}_FILE names ${file}, which cannot be read: ${(error as NodeJS.ErrnoException).code}`);
    }
  } else return null;
  if (value.length < minLength)
    throw new Error(
      `${name} is ${value.length} character(s) long; it must be at least ${minLength} ` +
        '(for one: openssl rand -base64 32)',
    );
  return new Secret(value);
}

/** A state backend: answers several keys together, in one round trip where it can. */
export interface StateStore {
  /** The values of those `keys` that exist. A key that merely has children is not a value. */
  read(keys: readonly string[]): Promise<Map<string, unknown>>;
  /** Releases connections; the store is not used afterwards. */
  close(): Promise<void>;
}

/** A store the laboratory's administrator may write through labtest (`state set`/`unset`). */
export interface WritableStateStore extends StateStore {
  write(key: string, value: unknown): Promise<void>;
  remove(key: string): Promise<boolean>;
}

export function isWritable(store: StateStore): store is WritableStateStore {
  return "write" in store && "remove" in store;
}

/** What JSON holds: the values a state store keeps. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/** Values in stores are JSON; text that does not parse is kept as a string. */
export function parseValue(text: string): JsonValue {
  try {
    return JSON.parse(text) as JsonValue;
  } catch {
    return text;
  }
}

/** The empty state: no state.json, so every lookup falls through to built-in defaults. */
export const emptyStore: StateStore = {
  read: async () => new Map(),
  close: async () => undefined,
};

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

/** Values in stores are JSON; text that does not parse is kept as a string. */
export function parseValue(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** The empty state: no state.json, so every lookup falls through to built-in defaults. */
export const emptyStore: StateStore = {
  read: async () => new Map(),
  close: async () => undefined,
};
